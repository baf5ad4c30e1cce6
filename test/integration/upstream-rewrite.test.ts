// strip_prefix / rewrite_prefix and per-route request/response header set/remove (issue 20): the exact paths
// the upstream received, Location and Set-Cookie Path mapped back, the audit record naming both paths, hostile
// spellings that must not be stripped, and the header names refused at load.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { headerNames, startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { rawRequest } from '../helpers/raw.ts';
import { closeAllLive, openLive, startEchoUpstream, type EchoUpstream } from '../helpers/live.ts';

let app: Upstream;
let other: Upstream;
let echo: EchoUpstream;
let gw: TestGateway;

beforeAll(async () => {
  // Answers with redirects and cookies that point into its own (rewritten) path space.
  app = await startUpstream((req, res, rec) => {
    const headers: Record<string, string | string[]> = { 'content-type': 'application/json', 'x-app-secret': 'internal', 'x-keep': 'yes' };
    if (rec.url.endsWith('/redirect-rel')) headers.location = '/new/login?next=%2Fnew%2Fa';
    if (rec.url.endsWith('/redirect-abs')) headers.location = `${app.url}/new/p#frag`;
    if (rec.url.endsWith('/redirect-out')) headers.location = '/elsewhere/x';
    if (rec.url.endsWith('/redirect-foreign')) headers.location = 'https://other.example/new/x';
    if (rec.url.endsWith('/redirect-root')) headers.location = '/x';
    if (rec.url.endsWith('/cookies')) headers['set-cookie'] = ['a=1; Path=/new/sub; HttpOnly', 'b=2; path=/', 'c=3; Path=/newer'];
    res.writeHead(rec.url.includes('redirect') ? 302 : 200, headers);
    res.end(JSON.stringify({ url: rec.url }));
    return true;
  });
  other = await startUpstream();
  echo = await startEchoUpstream();
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
log: { audit: audit.log }
routes:
  - name: strip
    match: { path: /app }
    upstream: { url: ${app.url}, strip_prefix: /app }
    public: true
  - name: rewrite
    match: { path: /old }
    upstream: { url: ${app.url}, rewrite_prefix: /new }
    public: true
  - name: partial
    match: { path: /v1/api }
    upstream: { url: ${app.url}, strip_prefix: /v1, rewrite_prefix: /new }
    public: true
  - name: wsapp
    match: { path: /wsapp }
    upstream: { url: ${echo.url}, strip_prefix: /wsapp, rewrite_prefix: /live }
    public: true
    request_headers: { set: { X-Tenant: acme } }
  - name: headers
    match: { path: /hdr }
    upstream: { url: ${app.url} }
    public: true
    request_headers: { set: { X-Tenant: acme, User-Agent: gw }, remove: [X-Debug, accept-language] }
    response_headers: { set: { X-Frame-Hint: none, Cache-Control: no-store }, remove: [X-App-Secret] }
  - name: rest
    match: { path: / }
    upstream: { url: ${other.url} }
    public: true
`);
});

afterAll(async () => {
  closeAllLive();
  await gw?.close();
  await echo?.close();
  await app?.close();
  await other?.close();
});

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text };
}

const last = (u: Upstream) => u.received[u.received.length - 1];

describe('strip_prefix and rewrite_prefix', () => {
  it('strips on the segment boundary: exact paths the upstream received, query kept, empty → /', async () => {
    const cases: Array<[string, string]> = [
      ['/app/x/y?q=1&r=%2F', '/x/y?q=1&r=%2F'],
      ['/app', '/'],
      ['/app/', '/'],
      ['/app/a%20b', '/a%20b'],
      ['/old/a', '/new/a'],
      ['/old', '/new'],
      ['/old/', '/new/'],
      ['/v1/api/z', '/new/api/z'],
    ];
    for (const [sent, expected] of cases) {
      const r = await get(sent);
      expect(r.status, sent).toBe(200);
      expect(last(app)?.url, sent).toBe(expected);
    }
  });

  it('hostile spellings are never stripped: /app/../x, /app%2F.., /appx', async () => {
    const before = app.received.length;
    const otherBefore = other.received.length;
    // Dot segments that climb out of the route are refused by normalize before routing: nothing is forwarded.
    const dots = await rawRequest(gw.port, `GET /app/../x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    expect(dots.status).toBe(400);
    expect((JSON.parse(dots.body) as { code: string }).code).toBe('GW_ERR_BAD_PATH');
    // An encoded slash is not a segment boundary: refused, never stripped.
    for (const p of ['/app%2F..', '/app%2Fx']) {
      const r = await get(p);
      expect(r.status, p).toBe(400);
      expect((JSON.parse(r.body) as { code: string }).code, p).toBe('GW_ERR_BAD_PATH');
    }
    expect(other.received.length).toBe(otherBefore);
    // Encoded dot segments resolve to /x: routed (and authorized) as /x, forwarded as /x by the catch-all.
    expect((await get('/app/%2e%2e/x')).status).toBe(200);
    expect(last(other)?.url).toBe('/x');
    const prefixOnly = await get('/appx/y');
    expect(prefixOnly.status).toBe(200);
    expect(last(other)?.url).toBe('/appx/y');
    expect(app.received.length).toBe(before);
  });

  it('maps Location and Set-Cookie Path in the rewritten space back (proxy_redirect default)', async () => {
    expect((await get('/old/redirect-rel')).headers.location).toBe('/old/login?next=%2Fnew%2Fa');
    expect((await get('/old/redirect-abs')).headers.location).toBe('/old/p#frag');
    expect((await get('/old/redirect-out')).headers.location).toBe('/elsewhere/x');
    expect((await get('/old/redirect-foreign')).headers.location).toBe('https://other.example/new/x');
    expect((await get('/app/redirect-root')).headers.location).toBe('/app/x');
    expect((await get('/old/cookies')).headers['set-cookie']).toEqual(['a=1; Path=/old/sub; HttpOnly', 'b=2; path=/', 'c=3; Path=/newer']);
    expect((await get('/app/cookies')).headers['set-cookie']).toEqual(['a=1; Path=/app/new/sub; HttpOnly', 'b=2; path=/app', 'c=3; Path=/app/newer']);
  });

  it('WebSocket upgrades get the same rewrite and request headers', async () => {
    const c = await openLive(`${gw.url.replace('http:', 'ws:')}/wsapp/socket?room=1`);
    await c.roundTrip('hi');
    expect(echo.connections.map((x) => x.url)).toEqual(['/live/socket?room=1']);
    expect(echo.connections[0]?.headers['x-tenant']).toBe('acme');
    c.ws.close();
  });

  it('the audit record names the client path and the forwarded path', async () => {
    const r = await request(`${gw.url}/old/audited?x=1`);
    await r.body.text();
    const id = r.headers['x-request-id'] as string;
    const file = join(gw.dir, 'audit.log');
    const rec = await waitFor(() => {
      const line = readFileSync(file, 'utf8').split('\n').find((l) => l.includes(id));
      return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
    });
    expect(rec.path).toBe('/old/audited');
    expect(rec.forwarded_path).toBe('/new/audited');
    expect(JSON.stringify(rec)).not.toContain('x=1');
  });
});

describe('request_headers and response_headers', () => {
  it('sets and removes request headers sent upstream, and response headers sent back', async () => {
    const r = await get('/hdr/x', { 'x-debug': '1', 'accept-language': 'fr', 'x-tenant': 'evil', 'user-agent': 'client' });
    expect(r.status).toBe(200);
    const rec = last(app);
    expect(rec?.headers['x-tenant']).toBe('acme');
    expect(rec?.headers['user-agent']).toBe('gw');
    expect(rec?.headers['x-debug']).toBeUndefined();
    expect(rec?.headers['accept-language']).toBeUndefined();
    expect(headerNames(rec as NonNullable<typeof rec>).filter((n) => n === 'x-tenant')).toHaveLength(1);
    expect(r.headers['x-app-secret']).toBeUndefined();
    expect(r.headers['x-keep']).toBe('yes');
    expect(r.headers['x-frame-hint']).toBe('none');
    expect(r.headers['cache-control']).toBe('no-store');
    // The gateway's security headers are still there.
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });
});

async function refusal(routeExtra: string, upstreamExtra = '', match = '/app'): Promise<Array<[string, string]>> {
  const text = `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
routes:
  - name: app
    match: { path: ${match} }
    upstream: { url: http://127.0.0.1:9${upstreamExtra} }
    public: true
${routeExtra}`;
  try {
    await compileConfig(parseConfigText(text, 'gw.yaml', tempDir(), {}));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p: ConfigProblem) => [p.code, p.keyPath.join('.')]);
  }
  throw new Error('config was accepted');
}

describe('refused at load', () => {
  it('strip_prefix off a segment boundary or outside match.path', async () => {
    expect(await refusal('', ', strip_prefix: /ap')).toEqual([['CFG_CONFLICT', 'routes.0.upstream.strip_prefix']]);
    expect(await refusal('', ', strip_prefix: /other')).toEqual([['CFG_CONFLICT', 'routes.0.upstream.strip_prefix']]);
    expect(await refusal('', ', strip_prefix: /app/deeper')).toEqual([['CFG_CONFLICT', 'routes.0.upstream.strip_prefix']]);
    expect((await refusal('', ', strip_prefix: /app/../x'))[0]?.[1]).toBe('routes.0.upstream.strip_prefix');
  });

  it('url and endpoints together, neither, or of mixed schemes', async () => {
    expect(await refusal('', ', endpoints: [http://127.0.0.1:10]')).toEqual([['CFG_CONFLICT', 'routes.0.upstream']]);
    const mixed = `listen: { address: 127.0.0.1:0, plaintext: true }
routes:
  - name: app
    upstream: { endpoints: [http://127.0.0.1:9, https://127.0.0.1:10] }
    public: true
`;
    await expect(compileConfig(parseConfigText(mixed, 'gw.yaml', tempDir(), {}))).rejects.toThrow(/same scheme/);
  });

  it('case_insensitive belongs to the app: routes to the same endpoints (in any order) must agree', async () => {
    const text = `listen: { address: 127.0.0.1:0, plaintext: true }
routes:
  - name: a
    match: { path: /a }
    upstream: { endpoints: [http://127.0.0.1:9, http://127.0.0.1:10], case_insensitive: true }
    public: true
  - name: b
    match: { path: /b }
    upstream: { endpoints: [http://127.0.0.1:10, http://127.0.0.1:9] }
    public: true
`;
    const err = await compileConfig(parseConfigText(text, 'gw.yaml', tempDir(), {})).then(
      () => undefined,
      (e: unknown) => e as ConfigError,
    );
    expect(err?.problems.map((p) => [p.code, p.keyPath.join('.')])).toEqual([['CFG_CONFLICT', 'routes.1.upstream.case_insensitive']]);
  });

  it('request_headers naming what the gateway owns', async () => {
    for (const name of ['Host', 'Authorization', 'Cookie', 'X-Forwarded-For', 'X-Forwarded-Anything', 'Forwarded', 'X-Request-Id', 'traceparent', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'X-Zt-User', 'X-Zt-Anything']) {
      expect(await refusal(`    request_headers: { set: { ${name}: v } }`), name).toEqual([['CFG_BAD_VALUE', `routes.0.request_headers.set.${name}`]]);
      expect(await refusal(`    request_headers: { remove: [${name}] }`), name).toEqual([['CFG_BAD_VALUE', 'routes.0.request_headers.remove.0']]);
    }
  });

  it('a custom identity header name of any route', async () => {
    const text = `    identity_headers: { user: X-Remote-User }
    request_headers: { remove: [X-Remote-User] }`;
    expect(await refusal(text)).toEqual([['CFG_BAD_VALUE', 'routes.0.request_headers.remove.0']]);
  });

  it('response_headers cannot remove or replace the security headers', async () => {
    for (const name of ['Strict-Transport-Security', 'Content-Security-Policy', 'X-Frame-Options', 'X-Content-Type-Options', 'Referrer-Policy']) {
      expect(await refusal(`    response_headers: { remove: [${name}] }`), name).toEqual([['CFG_BAD_VALUE', 'routes.0.response_headers.remove.0']]);
      expect(await refusal(`    response_headers: { set: { ${name}: x } }`), name).toEqual([['CFG_BAD_VALUE', `routes.0.response_headers.set.${name}`]]);
    }
    expect(await refusal('    response_headers: { remove: [Transfer-Encoding] }')).toEqual([['CFG_BAD_VALUE', 'routes.0.response_headers.remove.0']]);
    expect(await refusal('    response_headers: { set: { Access-Control-Allow-Origin: "*" } }')).toEqual([['CFG_BAD_VALUE', 'routes.0.response_headers.set.Access-Control-Allow-Origin']]);
    expect(await refusal('    request_headers: { set: { Sec-WebSocket-Protocol: x } }')).toEqual([['CFG_BAD_VALUE', 'routes.0.request_headers.set.Sec-WebSocket-Protocol']]);
    // Harmless names pass.
    await compileConfig(
      parseConfigText(
        `listen: { address: 127.0.0.1:0, plaintext: true }\nroutes:\n  - name: app\n    upstream: { url: http://127.0.0.1:9 }\n    public: true\n    request_headers: { set: { X-Tenant: a }, remove: [X-Debug] }\n    response_headers: { set: { Cache-Control: no-store }, remove: [Server-Timing] }\n`,
        'gw.yaml',
        tempDir(),
        {},
      ),
    );
  });
});
