// CORS per route: preflights answered by the gateway (no authentication, never forwarded), refused
// preflights carry no CORS headers, actual responses get ACAO only for allowed origins, and an upstream's
// own CORS headers are replaced on a CORS-configured route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { hashKey } from '../../src/authn/api-key.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const KEY = 'ztk_cors_0123456789abcdefghijklmnopqrstuvwxyzAB';
const APP = 'https://app.example.com';
const ADMIN = 'https://admin.example.com';

const CONFIG = (upstream: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: keys.yaml }
routes:
  - name: api
    match: { path: /api }
    upstream: { url: ${upstream}, timeout: 2s }
    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
    cors:
      origins: [${APP}, ${ADMIN}]
      methods: [GET, POST, PUT]
      headers: [Content-Type, X-Requested-With]
      expose_headers: [X-Total-Count]
      credentials: true
      max_age: 10m
  - name: pub
    match: { path: /pub }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
    cors: { origins: [${APP}] }
  - name: plain
    match: { path: /plain }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
`;

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => {
    // A legacy app that answers every request with the most permissive CORS headers it can.
    res.writeHead(200, {
      'content-type': 'application/json',
      'access-control-allow-origin': '*',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, POST, PUT, DELETE, PATCH',
      'access-control-expose-headers': '*',
      'x-total-count': '42',
    });
    res.end('{"ok":true}');
    return true;
  });
  gw = await startGateway(CONFIG(upstream.url), { files: { 'keys.yaml': `keys:\n  - { id: k1, hash: ${hashKey(KEY)}, subject: carol }\n` } });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function send(method: string, path: string, headers: Record<string, string>): Promise<Answer> {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

const preflight = (path: string, origin: string, method: string, requestHeaders?: string) =>
  send('OPTIONS', path, {
    origin,
    'access-control-request-method': method,
    ...(requestHeaders === undefined ? {} : { 'access-control-request-headers': requestHeaders }),
  });

const corsHeaderNames = (a: Answer) => Object.keys(a.headers).filter((n) => n.startsWith('access-control-'));

describe('CORS preflight', () => {
  it('answers an allowed preflight itself: 204, exact CORS headers, no authentication, nothing forwarded', async () => {
    const before = upstream.received.length;
    const a = await preflight('/api/items/7', APP, 'PUT', 'content-type, X-Requested-With');
    expect(a.status).toBe(204);
    expect(a.body).toBe('');
    expect(a.headers['access-control-allow-origin']).toBe(APP);
    expect(a.headers['access-control-allow-methods']).toBe('GET, POST, PUT');
    expect(a.headers['access-control-allow-headers']).toBe('Content-Type, X-Requested-With');
    expect(a.headers['access-control-max-age']).toBe('600');
    expect(a.headers['access-control-allow-credentials']).toBe('true');
    expect(a.headers['access-control-expose-headers']).toBeUndefined();
    expect(a.headers.vary).toBe('Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    expect(a.headers['www-authenticate']).toBeUndefined();
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(upstream.received.length).toBe(before);
    // The audit record names the route; nothing was authenticated.
    const rec = gw.logs.find((l) => l.msg === 'decision' && l.request_id === a.headers['x-request-id']);
    expect(rec).toMatchObject({ route: 'api', method: 'OPTIONS', status: 204 });
    expect(rec?.subject).toBeUndefined();
  });

  it('echoes the requesting origin, never *, for each allowed origin', async () => {
    const a = await preflight('/api/x', ADMIN, 'GET');
    expect(a.status).toBe(204);
    expect(a.headers['access-control-allow-origin']).toBe(ADMIN);
    const p = await preflight('/pub/x', APP, 'POST');
    expect(p.status).toBe(204);
    expect(p.headers['access-control-allow-origin']).toBe(APP);
    expect(p.headers['access-control-allow-methods']).toBe('GET, HEAD, POST');
    expect(p.headers['access-control-allow-credentials']).toBeUndefined();
    expect(p.headers['access-control-allow-headers']).toBeUndefined();
  });

  const refusals: Array<[string, string, string, string | undefined]> = [
    ['a disallowed origin', 'https://evil.example.com', 'GET', undefined],
    ['an origin that only extends an allowed one', 'https://app.example.com.evil.net', 'GET', undefined],
    ['an allowed host over another scheme', 'http://app.example.com', 'GET', undefined],
    ['an allowed origin on another port', 'https://app.example.com:8443', 'GET', undefined],
    ['the opaque origin null', 'null', 'GET', undefined],
    ['a disallowed method', APP, 'DELETE', undefined],
    ['a method in the wrong case', APP, 'put', undefined],
    ['a disallowed request header', APP, 'POST', 'content-type, x-evil'],
    ['an Authorization request header that is not listed', APP, 'GET', 'authorization'],
  ];
  for (const [what, origin, method, reqHeaders] of refusals) {
    it(`refuses ${what} with 403 and no Access-Control-* headers`, async () => {
      const before = upstream.received.length;
      const a = await preflight('/api/items', origin, method, reqHeaders);
      expect(a.status).toBe(403);
      const problem = JSON.parse(a.body) as { code: string };
      expect(problem.code).toBe('GW_ERR_FORBIDDEN');
      expect(corsHeaderNames(a)).toEqual([]);
      expect(a.headers['x-frame-options']).toBe('DENY');
      expect(upstream.received.length).toBe(before);
    });
  }

  it('treats OPTIONS without Access-Control-Request-Method as an ordinary request: it needs authentication', async () => {
    const before = upstream.received.length;
    const a = await send('OPTIONS', '/api/items', { origin: APP });
    expect(a.status).toBe(401);
    expect((JSON.parse(a.body) as { code: string }).code).toBe('GW_ERR_UNAUTHENTICATED');
    expect(upstream.received.length).toBe(before);
  });
});

describe('CORS on actual responses', () => {
  it('gives an allowed origin ACAO = that origin, credentials, expose list and Vary: Origin', async () => {
    const a = await send('GET', '/api/items', { origin: APP, authorization: `ApiKey ${KEY}` });
    expect(a.status).toBe(200);
    expect(a.headers['access-control-allow-origin']).toBe(APP);
    expect(a.headers['access-control-allow-credentials']).toBe('true');
    expect(a.headers['access-control-expose-headers']).toBe('X-Total-Count');
    // The upstream's permissive Access-Control-Allow-Methods is gone too.
    expect(corsHeaderNames(a).sort()).toEqual([
      'access-control-allow-credentials',
      'access-control-allow-origin',
      'access-control-expose-headers',
    ]);
    expect(a.headers.vary).toBe('Origin');
    expect(upstream.received.at(-1)?.headers.origin).toBe(APP);
  });

  it('gives a disallowed origin no CORS headers at all (the upstream ACAO: * is removed)', async () => {
    const a = await send('GET', '/api/items', { origin: 'https://evil.example.com', authorization: `ApiKey ${KEY}` });
    expect(a.status).toBe(200);
    expect(corsHeaderNames(a)).toEqual([]);
    expect(a.headers.vary).toBe('Origin');
    const none = await send('GET', '/api/items', { authorization: `ApiKey ${KEY}` });
    expect(none.status).toBe(200);
    expect(corsHeaderNames(none)).toEqual([]);
  });

  it("replaces the upstream's Access-Control-Allow-Origin: * on a public CORS route", async () => {
    const a = await send('GET', '/pub/x', { origin: APP });
    expect(a.status).toBe(200);
    expect(a.headers['access-control-allow-origin']).toBe(APP);
    expect(corsHeaderNames(a)).toEqual(['access-control-allow-origin']);
    const evil = await send('GET', '/pub/x', { origin: ADMIN });
    expect(corsHeaderNames(evil)).toEqual([]);
  });

  it('leaves the upstream CORS headers alone on a route without CORS config', async () => {
    const a = await send('GET', '/plain/x', { origin: 'https://anyone.example.net' });
    expect(a.status).toBe(200);
    expect(a.headers['access-control-allow-origin']).toBe('*');
  });
});
