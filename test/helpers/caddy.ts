// A real Caddy (the Debian package, 2.6) for forward-auth tests: a Caddyfile in a temp dir (adapter-less:
// the file's name says it is one), `admin off`, no automatic HTTPS (the test's own CA signs the site's
// certificate), its storage and config dirs inside the temp dir, spawned by the test and stopped after.
// With CI=true a missing caddy fails the test; elsewhere the caller may skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './gateway.ts';
import { accepts } from './nginx.ts';
import { IN_CI } from './redis.ts';
import { freePort, waitFor } from './wait.ts';

export const CADDY = ['/usr/bin/caddy', '/usr/local/bin/caddy'].find((p) => existsSync(p)) ?? 'caddy';

export function caddyAvailable(): boolean {
  const probe = spawnSync(CADDY, ['version'], { encoding: 'utf8', timeout: 5000 });
  const ok = probe.error === undefined && probe.status === 0;
  if (!ok && IN_CI) throw new Error(`CI=true but caddy cannot run: ${probe.error?.message ?? `exit ${probe.status}`} (apt-get install caddy)`);
  return ok;
}

export interface Caddy {
  readonly port: number;
  /** https://localhost:<port> */
  readonly url: string;
  readonly dir: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts Caddy with `site` (one site block whose address is `__SITE__`, e.g. deploy/forward-auth/Caddyfile with
 * its host replaced) on https://localhost:<free port>, bound to 127.0.0.1, with `tls` as its certificate.
 * `files` are written to the temp dir first (`__DIR__` in `site` is that dir).
 */
export async function startCaddy(site: string, tls: { cert: string; key: string }, files: Record<string, string> = {}): Promise<Caddy> {
  const dir = tempDir('ztgw-caddy-');
  const port = await freePort();
  writeFileSync(join(dir, 'site.crt'), tls.cert);
  writeFileSync(join(dir, 'site.key'), tls.key, { mode: 0o600 });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const body = site
    .replaceAll('__DIR__', dir)
    .replace('__SITE__ {', `https://localhost:${port} {\n\tbind 127.0.0.1\n\ttls ${dir}/site.crt ${dir}/site.key`);
  const file = join(dir, 'Caddyfile');
  writeFileSync(
    file,
    `{
	admin off
	auto_https off
	storage file_system {
		root ${dir}/data
	}
}

${body}`,
  );
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') };
  const check = spawnSync(CADDY, ['validate', '--config', file], { encoding: 'utf8', timeout: 15_000, env });
  if (check.status !== 0) throw new Error(`caddy validate failed:\n${check.stderr}`);
  const child: ChildProcess = spawn(CADDY, ['run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const url = `https://localhost:${port}`;
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`caddy exited: ${out}`);
        return accepts(port);
      },
      { timeoutMs: 10_000, intervalMs: 50, what: `caddy to listen on ${url}` },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; caddy output: ${out}`);
  }
  return {
    port,
    url,
    dir,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}
