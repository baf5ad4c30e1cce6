// What an operator runs first: every shipped config validates, and `npm run demo` serves the legacy app through
// the gateway over verified TLS behind a login at the demo OpenID provider, then stops every process it started
// on Ctrl-C. (test/browser/login.test.ts logs in with a real browser; here the IdP's form is posted directly.)
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
import { waitFor } from '../helpers/wait.ts';

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

  it.each(files.map((f) => [f.slice(root.length), f]))('%s validates without warnings', async (_name, file) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await validateCommand(file, { out: (l) => out.push(l), err: (l) => err.push(l) }, env);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/: valid \(\d+ routes?\)$/);
    expect(readFileSync(file, 'utf8').split('\n')[0]).toMatch(/^# yaml-language-server: \$schema=\S*schema\.json$/);
  });
});

describe('deploy/ configs', () => {
  // Both mount their config at /etc/zt-gateway with the TLS files in tls/: rebuild that layout in a temp dir.
  async function validateMounted(yaml: string): Promise<{ code: number; err: string[] }> {
    const dir = tempDir('ztgw-deploy-');
    try {
      mkdirSync(join(dir, 'tls'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-localhost.crt'), join(dir, 'tls', 'tls.crt'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-localhost.key'), join(dir, 'tls', 'tls.key'));
      writeFileSync(join(dir, 'gateway.yaml'), yaml);
      const err: string[] = [];
      // The admin token's hash comes from a Secret key (ZT_ADMIN_TOKEN_HASH), as in the Deployment.
      const code = await validateCommand(join(dir, 'gateway.yaml'), { out: () => undefined, err: (l) => err.push(l) }, { ZT_ADMIN_TOKEN_HASH: 'ab'.repeat(32) });
      return { code, err };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  // deploy/compose/gateway.yaml is loaded with the files its compose mounts in test/unit/deploy-container.test.ts,
  // and every ConfigMap in deploy/k8s in test/unit/deploy-k8s.test.ts.

  it('the gateway.yaml in the k8s sidecar ConfigMap validates', async () => {
    const docs = parseAllDocuments(readFileSync(join(root, 'deploy/k8s/sidecar.yaml'), 'utf8')).map((d) => d.toJS());
    const configMap = docs.find((d) => d?.kind === 'ConfigMap') as { data: Record<string, string> } | undefined;
    expect(configMap?.data['gateway.yaml']).toBeDefined();
    expect(await validateMounted(configMap?.data['gateway.yaml'] as string)).toEqual({ code: 0, err: [] });
  });
});

describe('README', () => {
  it('its annotated config example validates', async () => {
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
      const code = await validateCommand(join(dir, 'gateway.yaml'), { out: () => undefined, err: (l) => err.push(l) }, env);
      expect(err).toEqual([]);
      expect(code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The cookies a browser would keep, per host (cookies ignore ports): enough for the demo's login. */
class Jar {
  private readonly byHost = new Map<string, Map<string, string>>();
  store(url: string, setCookie: string | string[] | undefined): void {
    const jar = this.byHost.get(new URL(url).hostname) ?? new Map<string, string>();
    this.byHost.set(new URL(url).hostname, jar);
    for (const line of setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const pair = line.split(';')[0] as string;
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      if (/;\s*max-age=0/i.test(line)) jar.delete(name);
      else jar.set(name, pair.slice(eq + 1).trim());
    }
  }
  get(url: string, name: string): string | undefined {
    return this.byHost.get(new URL(url).hostname)?.get(name);
  }
  header(url: string): string | undefined {
    const jar = this.byHost.get(new URL(url).hostname);
    return jar && jar.size > 0 ? [...jar].map(([n, v]) => `${n}=${v}`).join('; ') : undefined;
  }
}

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
  let ports: { gateway: number; app: number; admin: number; idp: number };
  let agent: Agent;
  let ca: Buffer;
  let idp = '';
  let account = { login: '', password: '', otp: '' };

  /** One request as a browser navigation would make it (no redirect following), with the jar's cookies. */
  async function step(jar: Jar, href: string, opts: { method?: 'GET' | 'POST'; form?: Record<string, string>; headers?: Record<string, string> } = {}) {
    const cookie = jar.header(href);
    const res = await request(href, {
      method: opts.method ?? 'GET',
      dispatcher: href.startsWith('https:') ? agent : undefined,
      headers: {
        accept: 'text/html',
        ...(cookie ? { cookie } : {}),
        ...(opts.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(opts.headers ?? {}),
      },
      ...(opts.form ? { body: new URLSearchParams(opts.form).toString() } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.body.text();
    jar.store(href, res.headers['set-cookie']);
    const location = typeof res.headers.location === 'string' ? new URL(res.headers.location, href).href : undefined;
    return { status: res.statusCode, location, text, headers: res.headers };
  }

  /**
   * Opens `path` at the gateway, follows it to the IdP, posts the demo account to the IdP's login form (with
   * the one-time code when `otp`), and follows the redirects back. Returns the final answer and the jar.
   */
  async function login(path: string, jar = new Jar(), otp = false) {
    let r = await step(jar, new URL(path, url).href);
    const trail: string[] = [];
    for (let i = 0; i < 12 && r.location; i++) {
      trail.push(`${r.status} ${r.location}`);
      r = await step(jar, r.location);
      const action = /<form method="post" action="([^"]+)"/.exec(r.text)?.[1];
      if (r.status === 200 && action && !r.location) {
        const form = { login: account.login, password: account.password, otp: otp ? account.otp : '' };
        r = await step(jar, new URL(action, idp).href, { method: 'POST', form });
      }
    }
    return { ...r, jar, trail };
  }

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
    await waitFor(() => stderr.includes('Ctrl-C'), { timeoutMs: 2000, intervalMs: 20, what: 'the demo hints on stderr (up to "Ctrl-C")' });
    const port = (re: RegExp) => Number(re.exec(stderr)?.[1]);
    ports = {
      gateway: Number(new URL(url).port),
      app: port(/legacy app:\s+http:\/\/127\.0\.0\.1:(\d+)\//),
      admin: port(/admin:\s+http:\/\/127\.0\.0\.1:(\d+)\//),
      idp: port(/demo IdP:\s+http:\/\/127\.0\.0\.1:(\d+)\//),
    };
    idp = `http://127.0.0.1:${ports.idp}`;
    // The demo account exactly as printed for a person.
    const printed = /log in:\s+(\S+) \/ (\S+)\s+\(alice@example\.com/.exec(stderr);
    account = { login: printed?.[1] ?? '', password: printed?.[2] ?? '', otp: /one-time code (\d+)/.exec(stderr)?.[1] ?? '' };
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
    expect(ports.idp).toBeGreaterThan(0);
    expect(new Set([ports.gateway, ports.app, ports.admin, ports.idp]).size).toBe(4);
    expect(account).toEqual({ login: 'alice', password: expect.any(String), otp: expect.stringMatching(/^\d{6}$/) });
  });

  it('sends a browser navigation without a session to the demo IdP, and an API call gets 401', async () => {
    const nav = await request(new URL('/some/page?x=1', url), { dispatcher: agent, headers: { accept: 'text/html' } });
    await nav.body.text();
    expect(nav.statusCode).toBe(302);
    const to = new URL(nav.headers.location as string);
    expect(to.origin).toBe(idp);
    expect(to.pathname).toBe('/auth');
    expect(to.searchParams.get('client_id')).toBe('zt-gateway-demo');
    expect(to.searchParams.get('redirect_uri')).toBe(new URL('/.zt/callback', url).href);
    expect(to.searchParams.get('code_challenge_method')).toBe('S256');
    expect(String(nav.headers['set-cookie'])).toMatch(/^__Host-zt-tx-[^=]+=[^;]+; Path=\/; Secure; HttpOnly; SameSite=Lax/);

    const discovery = await request(`${idp}/.well-known/openid-configuration`);
    expect(((await discovery.body.json()) as { issuer: string }).issuer).toBe(idp);

    const api = await request(new URL('/some/page', url), { dispatcher: agent, headers: { accept: 'application/json' } });
    await api.body.text();
    expect(api.statusCode).toBe(401);
  });

  it('refuses a wrong password at the IdP', async () => {
    const jar = new Jar();
    const start = await step(jar, new URL('/', url).href);
    const prompt = await step(jar, (await step(jar, start.location as string)).location as string);
    const action = /<form method="post" action="([^"]+)"/.exec(prompt.text)?.[1] as string;
    expect(prompt.text).toContain('Log in');
    const r = await step(jar, new URL(action, idp).href, { method: 'POST', form: { login: 'alice', password: 'wrong' } });
    expect(r.status).toBe(200);
    expect(r.location).toBeUndefined();
    expect(r.text).toContain('Wrong login or password.');
  });

  it('logs in with the printed demo account and serves the page with verified identity, X-Forwarded-For and no spoofed headers', async () => {
    const jar = new Jar();
    const done = await login('/some/page?x=1', jar);
    expect(done.status, done.trail.join('\n')).toBe(200);
    expect(jar.get(url, '__Host-zt')).toBeDefined();
    const res = await step(jar, new URL('/some/page?x=1', url).href, {
      headers: { 'x-zt-user': 'mallory', 'x-zt-email': 'mallory@evil.example', 'x-forwarded-for': '203.0.113.9' },
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('<code>GET /some/page?x=1</code>');
    expect(res.text).toContain('<th>x-zt-email</th><td>alice@example.com</td>');
    expect(res.text).toContain('<th>x-zt-user</th><td>alice</td>');
    expect(res.text).toContain('<th>x-zt-groups</th><td>sales</td>');
    expect(res.text).toContain('<th>x-forwarded-for</th><td>127.0.0.1</td>');
    expect(res.text).toContain('<th>x-request-id</th>');
    expect(res.text).not.toContain('mallory');
    expect(res.text).not.toContain('203.0.113.9');
    expect(res.text).not.toContain('__Host-zt'); // the session cookie is the gateway's, never the app's
    expect(res.headers['x-powered-by']).toBeUndefined(); // the app sends one; the gateway removes it
    expect(res.headers['strict-transport-security']).toBeDefined();

    // /admin/ steps up: back to the IdP for the one-time code, then in.
    const admin = await step(jar, new URL('/admin/', url).href);
    expect(admin.status).toBe(302);
    expect(new URL(admin.location as string).searchParams.get('acr_values')).toBe('mfa');
    const mfa = await login('/admin/', jar, true);
    expect(mfa.status, mfa.trail.join('\n')).toBe(200);
    expect(mfa.text).toContain('<code>GET /admin/</code>');

    // Logout: the link shows the gateway's confirmation page (a GET changes nothing); its POST form clears the
    // session cookie and the browser goes on to the IdP's end_session endpoint.
    const confirm = await step(jar, new URL('/.zt/logout', url).href);
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain('<form method="post" action="/.zt/logout">');
    expect(jar.get(url, '__Host-zt')).toBeDefined();
    const out = await step(jar, new URL('/.zt/logout', url).href, { method: 'POST' });
    expect(out.status).toBe(302);
    expect(out.location).toMatch(new RegExp(`^${idp}/session/end`));
    expect(jar.get(url, '__Host-zt')).toBeUndefined();
    const again = await step(jar, new URL('/some/page', url).href);
    expect(again.status).toBe(302);
    expect(new URL(again.location as string).origin).toBe(idp);
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

  it('echoes a WebSocket through the gateway, for a logged-in session', async () => {
    const { jar } = await login('/');
    const cookie = jar.header(url) as string;
    expect(cookie).toContain('__Host-zt=');
    const ws = new WebSocket(`${url.replace(/^https/, 'wss')}ws`, { ca, headers: { cookie } });
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

  it('refuses a WebSocket without a session with 401, even when it looks like a browser navigation (a socket cannot follow a login redirect)', async () => {
    const ws = new WebSocket(`${url.replace(/^https/, 'wss')}ws`, { ca, headers: { accept: 'text/html,application/xhtml+xml' } });
    const answer = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      ws.once('open', () => reject(new Error('the upgrade was accepted without a session')));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      ws.once('error', () => undefined); // the refusal also surfaces as an error once the response ends
    });
    ws.terminate();
    expect(answer.status).toBe(401);
    expect((JSON.parse(answer.body) as { code: string }).code).toBe('GW_ERR_UNAUTHENTICATED');
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
    expect(await listening(ports.idp)).toBe(false);
    expect(stderr).not.toMatch(/exited \(.*\); stopping/);
  }, 30_000);
});
