// A real nginx (the Debian package) for forward-auth tests: a generated config in a temp dir, all of its
// paths (pid, logs, temp dirs) inside it, `daemon off`, spawned by the test and killed after. With CI=true a
// missing nginx fails the test; elsewhere the caller may skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './gateway.ts';
import { IN_CI } from './redis.ts';
import { freePort, waitFor } from './wait.ts';
import { request } from 'undici';
import { connect } from 'node:net';

/** A TCP connection to 127.0.0.1:port is accepted. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? 'nginx';

export function nginxAvailable(): boolean {
  const probe = spawnSync(NGINX, ['-v'], { encoding: 'utf8', timeout: 5000 });
  const ok = probe.error === undefined && probe.status === 0;
  if (!ok && IN_CI) throw new Error(`CI=true but nginx cannot run: ${probe.error?.message ?? `exit ${probe.status}`}`);
  return ok;
}

export interface Nginx {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/**
 * Starts nginx with `server` (the body of one server block; `__PORT__` is its listen port). With `tls` it
 * listens with that certificate (url https://localhost:<port>), as a browser-facing proxy would.
 */
export async function startNginx(server: string, opts: { tls?: { cert: string; key: string } } = {}): Promise<Nginx> {
  const dir = tempDir('ztgw-nginx-');
  const port = await freePort();
  let listen = `listen 127.0.0.1:${port};`;
  if (opts.tls) {
    writeFileSync(join(dir, 'tls.crt'), opts.tls.cert);
    writeFileSync(join(dir, 'tls.key'), opts.tls.key, { mode: 0o600 });
    listen = `listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/tls.crt;
    ssl_certificate_key ${dir}/tls.key;`;
  }
  // As root, nginx would switch its workers to `nobody`, who cannot use the temp dir: keep them root.
  const conf = `daemon off;
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    ${listen}
${server.replaceAll('__PORT__', String(port))}
  }
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  const test = spawnSync(NGINX, ['-t', '-c', file, '-p', dir], { encoding: 'utf8', timeout: 10_000 });
  if (test.status !== 0) throw new Error(`nginx -t failed:\n${test.stderr}`);
  const child: ChildProcess = spawn(NGINX, ['-c', file, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const url = opts.tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
        if (opts.tls) return accepts(port); // the caller's client trusts the certificate, not this probe
        try {
          const res = await request(`${url}/`, { headersTimeout: 500 });
          await res.body.dump();
          return true;
        } catch {
          return false; // not listening yet
        }
      },
      { timeoutMs: 5000, intervalMs: 50, what: `nginx to answer on ${url}` },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; nginx stderr: ${stderr}`);
  }
  return {
    port,
    url,
    dir,
    errorLog: () => readFileSync(join(dir, 'error.log'), 'utf8'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM'); // nginx: fast shutdown
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(timer);
    },
  };
}
