// A real gateway in front of a real upstream: default deny, reserved paths, and config reload
// (explicit, file watch, invalid file keeps the last good config, in-flight requests keep their config).
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => Record<string, unknown>;
}

async function get(url: string, method: 'GET' | 'POST' | 'DELETE' = 'GET'): Promise<Reply> {
  const res = await request(url, { method });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** Polls `check` every 50 ms until it returns true; fails after `timeoutMs` (never hangs). */
const until = (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 5_000) => waitFor(check, { what, timeoutMs, intervalMs: 50 });

interface RouteSpec {
  name: string;
  path: string;
  upstream: string;
  public?: boolean;
  methods?: string[];
}

function configWith(routes: RouteSpec[], extra = ''): string {
  const lines = routes.map((r) => {
    const match = JSON.stringify({ path: r.path, ...(r.methods ? { methods: r.methods } : {}) });
    return `  - name: ${r.name}
    match: ${match}
    upstream: { url: "${r.upstream}", timeout: 5s, connect_timeout: 1s }
    public: ${r.public ?? true}`;
  });
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 2s }
identity_headers: { assertion: false }
${extra}
routes:
${lines.join('\n')}
`;
}

let upstream: Upstream;
let other: Upstream;
const open: TestGateway[] = [];

async function gatewayFor(yaml: string, opts: { watch?: boolean } = {}): Promise<TestGateway> {
  const gw = await startGateway(yaml, opts);
  open.push(gw);
  return gw;
}

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (!req.url?.startsWith('/slow')) return false;
    // Answers after a delay: long enough to reload the gateway while the request is in flight.
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`slow answer for ${req.url}`);
    }, 1_000);
    return true;
  });
  other = await startUpstream();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});

afterAll(async () => {
  await upstream?.close();
  await other?.close();
});

describe('default deny', () => {
  it('no matching route → 404 GW_ERR_NO_ROUTE, nothing forwarded', async () => {
    const gw = await gatewayFor(
      configWith([
        { name: 'app', path: '/app', upstream: upstream.url },
        { name: 'reads', path: '/reads', upstream: upstream.url, methods: ['GET'] },
      ]),
    );
    const before = upstream.received.length;
    for (const [path, method] of [['/', 'GET'], ['/apps', 'GET'], ['/other/app', 'GET'], ['/reads/x', 'POST']] as const) {
      const res = await get(`${gw.url}${path}`, method);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(res.json()).toMatchObject({ status: 404, code: 'GW_ERR_NO_ROUTE' });
    }
    expect(upstream.received.length).toBe(before);
    // The control: the route that does exist is forwarded.
    expect((await get(`${gw.url}/app/x`)).status).toBe(200);
    expect(upstream.received.length).toBe(before + 1);
    expect(upstream.received.at(-1)?.url).toBe('/app/x');
  });

  it('a route without public: true and without authentication → 401 GW_ERR_UNAUTHENTICATED, nothing forwarded', async () => {
    const gw = await gatewayFor(
      configWith([
        { name: 'private', path: '/private', upstream: upstream.url, public: false },
        { name: 'open', path: '/', upstream: upstream.url },
      ]),
    );
    const before = upstream.received.length;
    for (const path of ['/private', '/private/', '/private/x?y=1', '/private;x/y']) {
      const res = await get(`${gw.url}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.json()).toMatchObject({ status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
      expect(res.headers['www-authenticate']).toBeDefined();
    }
    const post = await get(`${gw.url}/private/x`, 'POST');
    expect(post.status).toBe(401);
    expect(upstream.received.length).toBe(before);
    expect((await get(`${gw.url}/privatex`)).status).toBe(200);
    expect(upstream.received.at(-1)?.url).toBe('/privatex');
  });
});

describe('reserved paths never reach the upstream', () => {
  it('even with a catch-all public route', async () => {
    const gw = await gatewayFor(publicConfig(upstream.url, 'identity_headers: { assertion: false }'));
    const before = upstream.received.length;
    const reserved = [
      '/.zt',
      '/.zt/',
      '/.zt/anything',
      '/.zt/login?next=/',
      '/.zt;x/y',
      '/%2Ezt/anything',
      '/.well-known/zt-gateway',
      '/.well-known/zt-gateway/x',
      '/.well-known/zt-gateway/jwks.json',
      '/.well-known/zt-gateway;v=1/x',
    ];
    for (const path of reserved) {
      for (const method of ['GET', 'POST'] as const) {
        const res = await get(`${gw.url}${path}`, method);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.json()).toMatchObject({ code: 'GW_ERR_NO_ROUTE' });
      }
    }
    expect(upstream.received.length).toBe(before);
    // Neighbours of the reserved names are ordinary paths and are forwarded.
    for (const path of ['/.ztx', '/.well-known/zt-gatewayx', '/.well-known/other', '/x/.zt']) {
      expect((await get(`${gw.url}${path}`)).status, path).toBe(200);
      expect(upstream.received.at(-1)?.url).toBe(path);
    }
  });

  it('the JWKS is answered by the gateway itself', async () => {
    const gw = await gatewayFor(publicConfig(upstream.url));
    const before = upstream.received.length;
    const res = await get(`${gw.url}/.well-known/zt-gateway/jwks.json`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/jwk-set+json');
    expect(Array.isArray(res.json().keys)).toBe(true);
    expect(upstream.received.length).toBe(before);
  });
});

describe('reload', () => {
  it('gateway.reload() after rewriting the file swaps the routes', async () => {
    const gw = await gatewayFor(configWith([{ name: 'one', path: '/one', upstream: upstream.url }]));
    expect((await get(`${gw.url}/one`)).status).toBe(200);
    expect((await get(`${gw.url}/two`)).status).toBe(404);
    const generation = gw.gateway.runtime.current.generation;

    writeFileSync(gw.configFile, configWith([{ name: 'two', path: '/two', upstream: other.url }]));
    expect(await gw.gateway.reload()).toBe(true);

    expect(gw.gateway.runtime.current.generation).toBe(generation + 1);
    const two = await get(`${gw.url}/two/x`);
    expect(two.status).toBe(200);
    expect(other.received.at(-1)?.url).toBe('/two/x');
    expect((await get(`${gw.url}/one`)).status).toBe(404);
    expect(gw.logs.some((l) => l.msg === 'config reloaded' && l.generation === generation + 1)).toBe(true);
  });

  it('an invalid file keeps the old config, logs the located problem and returns false', async () => {
    const gw = await gatewayFor(configWith([{ name: 'one', path: '/one', upstream: upstream.url }]));
    const generation = gw.gateway.runtime.current.generation;
    const bad = configWith([{ name: 'two', path: '/two', upstream: 'ftp://127.0.0.1:21' }], 'bogus: true');

    writeFileSync(gw.configFile, bad);
    expect(await gw.gateway.reload()).toBe(false);

    expect(gw.gateway.runtime.current.generation).toBe(generation);
    const one = await get(`${gw.url}/one/still`);
    expect(one.status).toBe(200);
    expect((await get(`${gw.url}/two`)).status).toBe(404);
    const failure = gw.logs.find((l) => l.msg === 'config reload failed; keeping the running config');
    expect(failure).toBeDefined();
    expect(failure?.level).toBe('error');
    expect(failure?.problems).toEqual([
      `${gw.configFile}: bogus: unknown key at line 4:1`,
      `${gw.configFile}: routes[0].upstream.url: upstream URL must be http:// or https:// at line 8:22`,
    ]);

    // A YAML syntax error is no different.
    writeFileSync(gw.configFile, 'listen: { address: 127.0.0.1:0\n');
    expect(await gw.gateway.reload()).toBe(false);
    expect((await get(`${gw.url}/one`)).status).toBe(200);

    // Fixing the file makes the next reload succeed.
    writeFileSync(gw.configFile, configWith([{ name: 'two', path: '/two', upstream: upstream.url }]));
    expect(await gw.gateway.reload()).toBe(true);
    expect((await get(`${gw.url}/two`)).status).toBe(200);
    expect((await get(`${gw.url}/one`)).status).toBe(404);
  });

  it('a deleted config file keeps the old config', async () => {
    const gw = await gatewayFor(configWith([{ name: 'one', path: '/one', upstream: upstream.url }]));
    const { rmSync } = await import('node:fs');
    rmSync(gw.configFile);
    expect(await gw.gateway.reload()).toBe(false);
    expect((await get(`${gw.url}/one`)).status).toBe(200);
    const failure = gw.logs.find((l) => l.msg === 'config reload failed; keeping the running config');
    expect(failure?.problems).toEqual([`${gw.configFile}: cannot read config file (ENOENT)`]);
  });

  it('watch: rewriting the file reloads it; an invalid rewrite is ignored', async () => {
    const gw = await gatewayFor(configWith([{ name: 'one', path: '/one', upstream: upstream.url }]), { watch: true });
    expect((await get(`${gw.url}/one`)).status).toBe(200);

    writeFileSync(gw.configFile, configWith([{ name: 'watched', path: '/watched', upstream: upstream.url }]));
    await until('the watched route to answer', async () => (await get(`${gw.url}/watched`)).status === 200);
    expect((await get(`${gw.url}/one`)).status).toBe(404);

    writeFileSync(gw.configFile, 'listen: [this is not valid\n');
    await until('the failed reload to be logged', () =>
      gw.logs.some((l) => l.msg === 'config reload failed; keeping the running config'),
    );
    expect((await get(`${gw.url}/watched`)).status).toBe(200);

    // The watch survives a failed reload.
    writeFileSync(gw.configFile, configWith([{ name: 'again', path: '/again', upstream: upstream.url }]));
    await until('the route after the failed reload to answer', async () => (await get(`${gw.url}/again`)).status === 200);
  });

  it('watch: an editor-style save (write a temp file, rename it over the config) reloads, twice', async () => {
    const { renameSync } = await import('node:fs');
    const gw = await gatewayFor(configWith([{ name: 'one', path: '/one', upstream: upstream.url }]), { watch: true });
    for (const name of ['first', 'second']) {
      const tmp = `${gw.configFile}.${name}.tmp`;
      writeFileSync(tmp, configWith([{ name, path: `/${name}`, upstream: upstream.url }]));
      renameSync(tmp, gw.configFile);
      await until(`the ${name} route to answer`, async () => (await get(`${gw.url}/${name}`)).status === 200);
    }
    expect((await get(`${gw.url}/one`)).status).toBe(404);
    expect((await get(`${gw.url}/first`)).status).toBe(404);
  });

  it('an in-flight request finishes on the config it started with', async () => {
    const gw = await gatewayFor(
      configWith([
        { name: 'slow', path: '/slow', upstream: upstream.url },
        { name: 'one', path: '/one', upstream: upstream.url },
      ]),
    );
    const before = upstream.received.length;
    const inflight = get(`${gw.url}/slow/1`);
    await until('the upstream to receive the slow request', () => upstream.received.slice(before).some((r) => r.url === '/slow/1'));

    // The new config drops the route and no longer uses this upstream at all (its pool is retired).
    writeFileSync(gw.configFile, configWith([{ name: 'two', path: '/two', upstream: other.url }]));
    expect(await gw.gateway.reload()).toBe(true);

    const fresh = await get(`${gw.url}/slow/2`);
    expect(fresh.status).toBe(404);
    expect(fresh.json()).toMatchObject({ code: 'GW_ERR_NO_ROUTE' });

    const done = await inflight;
    expect(done.status).toBe(200);
    expect(done.text).toBe('slow answer for /slow/1');
    expect(upstream.received.slice(before).map((r) => r.url)).toEqual(['/slow/1']);
    const access = gw.logs.find((l) => l.msg === 'request' && l.path === '/slow/1');
    expect(access).toMatchObject({ route: 'slow', status: 200, completed: true });
    expect((await get(`${gw.url}/two`)).status).toBe(200);
  });
});
