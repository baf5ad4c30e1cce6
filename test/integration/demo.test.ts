// What an operator runs first: every shipped config validates, and `npm run demo` serves the legacy app through
// the gateway over verified TLS, then stops every process it started on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateCommand } from '../../src/cli/validate.ts';
import { tempDir } from '../helpers/gateway.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('shipped config files', () => {
  const files = [
    join(root, 'config', 'gateway.yaml'),
    ...readdirSync(join(root, 'config', 'examples'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join(root, 'config', 'examples', f)),
  ];
  // The only reference the examples use; nothing else may be needed from the environment.
  const env = { ZT_REDIS_URL: 'redis://127.0.0.1:6379/0' };

  it('include the demo config and at least two examples', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it.each(files.map((f) => [f.slice(root.length), f]))('%s validates without warnings', (_name, file) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = validateCommand(file, { out: (l) => out.push(l), err: (l) => err.push(l) }, env);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/: valid \(\d+ routes?\)$/);
    expect(readFileSync(file, 'utf8').split('\n')[0]).toMatch(/^# yaml-language-server: \$schema=\S*schema\.json$/);
  });
});

describe('deploy/ configs', () => {
  // Both mount their config at /etc/zt-gateway with the TLS files in tls/: rebuild that layout in a temp dir.
  function validateMounted(yaml: string): { code: number; err: string[] } {
    const dir = tempDir('ztgw-deploy-');
    try {
      mkdirSync(join(dir, 'tls'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-localhost.crt'), join(dir, 'tls', 'tls.crt'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-localhost.key'), join(dir, 'tls', 'tls.key'));
      writeFileSync(join(dir, 'gateway.yaml'), yaml);
      const err: string[] = [];
      const code = validateCommand(join(dir, 'gateway.yaml'), { out: () => undefined, err: (l) => err.push(l) }, {});
      return { code, err };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('deploy/compose/gateway.yaml validates', () => {
    expect(validateMounted(readFileSync(join(root, 'deploy/compose/gateway.yaml'), 'utf8'))).toEqual({ code: 0, err: [] });
  });

  it('the gateway.yaml in the k8s sidecar ConfigMap validates', () => {
    const docs = parseAllDocuments(readFileSync(join(root, 'deploy/k8s/sidecar.yaml'), 'utf8')).map((d) => d.toJS());
    const configMap = docs.find((d) => d?.kind === 'ConfigMap') as { data: Record<string, string> } | undefined;
    expect(configMap?.data['gateway.yaml']).toBeDefined();
    expect(validateMounted(configMap?.data['gateway.yaml'] as string)).toEqual({ code: 0, err: [] });
  });
});

describe('README', () => {
  it('its annotated config example validates', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const m = /<!-- this block is validated by test\/integration\/demo\.test\.ts -->\n```yaml\n([\s\S]*?)```/.exec(readme);
    expect(m).not.toBeNull();
    const dir = tempDir('ztgw-readme-');
    try {
      mkdirSync(join(dir, 'certs'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-localhost.crt'), join(dir, 'certs', 'gw.crt'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-localhost.key'), join(dir, 'certs', 'gw.key'));
      copyFileSync(join(root, 'examples/demo/DEMO-ONLY-api-keys.yaml'), join(dir, 'api-keys.yaml'));
      writeFileSync(join(dir, 'gateway.yaml'), m?.[1] as string);
      const err: string[] = [];
      const env = { OIDC_SECRET: 'not-a-real-secret', SESSION_SECRET: 'a-session-secret-of-at-least-32-characters' };
      const code = validateCommand(join(dir, 'gateway.yaml'), { out: () => undefined, err: (l) => err.push(l) }, env);
      expect(err).toEqual([]);
      expect(code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** true when something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('npm run demo', () => {
  const stateDir = tempDir('ztgw-demo-');
  let demo: ChildProcess;
  let stderr = '';
  let url = '';
  let ports: { gateway: number; app: number; admin: number };
  let agent: Agent;
  let ca: Buffer;

  beforeAll(async () => {
    demo = spawn(process.execPath, [join(root, 'examples', 'demo', 'run.js')], {
      cwd: root,
      // A fresh state directory: exercises the first run (certificate generation) and leaves a running
      // developer demo in examples/demo/.state alone.
      env: { ...process.env, ZT_DEMO_STATE_DIR: stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const lines: string[] = [];
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no demo line within 45 s; stderr:\n${stderr}`)), 45_000);
      demo.once('exit', (code) => reject(new Error(`demo exited (${code}) before it was ready; stderr:\n${stderr}`)));
      createInterface({ input: demo.stdout! }).on('line', (line) => {
        lines.push(line);
        const m = /^zt-gateway demo: (https:\/\/localhost:\d+\/)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      });
    });
    // The hints follow the entry line on stderr; wait until the last one is there.
    for (let i = 0; i < 100 && !stderr.includes('Ctrl-C'); i++) await new Promise((r) => setTimeout(r, 20));
    const port = (re: RegExp) => Number(re.exec(stderr)?.[1]);
    ports = {
      gateway: Number(new URL(url).port),
      app: port(/legacy app:\s+http:\/\/127\.0\.0\.1:(\d+)\//),
      admin: port(/admin:\s+http:\/\/127\.0\.0\.1:(\d+)\//),
    };
    expect(lines).toHaveLength(1); // the entry point is the only line on stdout
    ca = readFileSync(join(stateDir, 'ca.crt'));
    // Trust exactly the demo CA: verification stays on.
    agent = new Agent({ connect: { ca } });
  }, 60_000);

  afterAll(async () => {
    await agent?.close().catch(() => undefined); // already closed by the SIGINT test when it ran
    if (demo && demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL'); // its children follow (IPC guard)
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('created the dev CA and a localhost certificate on its first run, and chose free ports', () => {
    expect(ca.toString()).toContain('BEGIN CERTIFICATE');
    expect(readFileSync(join(stateDir, 'localhost.crt'), 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(ports.app).toBeGreaterThan(0);
    expect(ports.admin).toBeGreaterThan(0);
    expect(new Set([ports.gateway, ports.app, ports.admin]).size).toBe(3);
  });

  it('serves the legacy app page over verified TLS, with X-Forwarded-For and without spoofed identity', async () => {
    const res = await request(url, {
      dispatcher: agent,
      headers: { 'x-zt-user': 'mallory', 'x-forwarded-for': '203.0.113.9', accept: 'text/html' },
    });
    const body = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(body).toContain('<th>x-forwarded-for</th><td>127.0.0.1</td>');
    expect(body).toContain('<th>x-request-id</th>');
    expect(body).not.toContain('mallory');
    expect(body).not.toContain('203.0.113.9');
    expect(res.headers['x-powered-by']).toBeUndefined(); // the app sends one; the gateway removes it
    expect(res.headers['strict-transport-security']).toBeDefined();
  });

  it('refuses a client that does not trust the demo CA', async () => {
    const untrusting = new Agent();
    try {
      await expect(request(url, { dispatcher: untrusting })).rejects.toThrow(/certificate/i);
    } finally {
      await untrusting.close();
    }
  });

  it('routes /static/ as public and /api only with the demo API key', async () => {
    const css = await request(new URL('/static/style.css', url), { dispatcher: agent });
    await css.body.text();
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);

    const anonymous = await request(new URL('/api/', url), { dispatcher: agent });
    expect(anonymous.statusCode).toBe(401);
    expect(((await anonymous.body.json()) as { code: string }).code).toBe('GW_ERR_UNAUTHENTICATED');

    const keyed = await request(new URL('/api/orders', url), {
      dispatcher: agent,
      headers: { authorization: 'ApiKey ztk_DEMO-ONLY-not-a-secret' },
    });
    const seen = (await keyed.body.json()) as { headers: Record<string, string> };
    expect(keyed.statusCode).toBe(200);
    expect(seen.headers['x-zt-user']).toBe('demo-user');
    expect(seen.headers['x-zt-assertion']).toMatch(/^eyJ/);
    expect(seen.headers.authorization).toBeUndefined(); // the credential is not passed on
  });

  it('refuses an ambiguous path without forwarding it', async () => {
    const res = await request(new URL('/..%2fetc/passwd', url), { dispatcher: agent });
    expect(res.statusCode).toBe(400);
    expect(((await res.body.json()) as { code: string }).code).toBe('GW_ERR_BAD_PATH');
  });

  it('echoes a WebSocket through the gateway', async () => {
    const ws = new WebSocket(`${url.replace(/^https/, 'wss')}ws`, { ca });
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (data) => {
        messages.push(String(data));
        if (messages.length === 1) ws.send('ping');
        else resolve();
      });
    });
    ws.close();
    expect(messages).toEqual(['connected; X-Forwarded-For: 127.0.0.1', 'echo: ping']);
  });

  it('answers the admin health endpoints on loopback', async () => {
    const health = await request(`http://127.0.0.1:${ports.admin}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.text();
    const ready = await request(`http://127.0.0.1:${ports.admin}/readyz`);
    expect(ready.statusCode).toBe(200);
    await ready.body.text();
  });

  it('stops the gateway and the app on SIGINT', async () => {
    await agent.close(); // no keep-alive connection left for the gateway to wait for
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(await listening(ports.app)).toBe(false);
    expect(await listening(ports.gateway)).toBe(false);
    expect(await listening(ports.admin)).toBe(false);
    expect(stderr).not.toMatch(/exited \(.*\); stopping/);
  }, 30_000);
});
