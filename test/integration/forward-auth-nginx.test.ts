// Forward-auth through a REAL nginx (auth_request) in front of a test app, using deploy/forward-auth/nginx.conf
// as documented: no credentials → 401 and the app never reached; an API key or a JWT → the app reached with
// the gateway's X-ZT-User; identity headers a client sends never reach the app; refused paths never reach
// it either, and reach the client as the gateway's own 4xx (X-ZT-Error + error_page), not nginx's 500. Then /.zt/verify itself, called directly: trusted callers only, strict forwarded headers.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { apiKeyFixture } from '../helpers/api-keys.ts';
import { expectProblem, rawMessage, valuesOf, type Answer } from '../helpers/attack.ts';
import { rawRequest } from '../helpers/raw.ts';
import { root } from '../helpers/build.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startIdp, type TestIdp } from '../helpers/idp.ts';
import { IN_CI } from '../helpers/redis.ts';
import { nginxAvailable, startNginx, type Nginx } from '../helpers/nginx.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const available = nginxAvailable(); // throws under CI=true when nginx is missing
if (!available && !IN_CI) console.warn('forward-auth-nginx.test.ts: nginx is not installed here; skipping (apt-get install nginx)');

const { ops: OPS_KEY, plain: PLAIN_KEY, dev: DEV_KEY, yaml: KEYS } = apiKeyFixture('fa');

let app: Upstream;
let idp: TestIdp;
let gw: TestGateway;
let nginx: Nginx;
const untrusted = new Agent({ localAddress: '127.0.0.3' }); // loopback, but not in trusted_proxies

async function get(url: string, headers: Record<string, string | string[]> = {}, dispatcher?: Agent): Promise<Answer> {
  const res = await request(url, { headers, ...(dispatcher ? { dispatcher } : {}) });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** What the app saw for `path` (exactly one request), or fails. */
function appSaw(path: string) {
  const hits = app.received.filter((r) => r.url === path);
  expect(hits, `app requests for ${path}`).toHaveLength(1);
  return hits[0] as (typeof hits)[number];
}

const appNeverSaw = (path: string) => expect(app.received.filter((r) => r.url.startsWith(path.split('?')[0] as string))).toEqual([]);

describe.skipIf(!available)('forward-auth through nginx auth_request', () => {
  beforeAll(async () => {
    app = await startUpstream();
    idp = await startIdp();
    gw = await startGateway(
      `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
trusted_proxies: [127.0.0.1/32]
identity_providers:
  keys: { type: api_key, keys_file: api-keys.yaml }
  corp: { type: jwt, issuer: "${idp.issuer}", audiences: [gw], algorithms: [ES256], jwks_uri: "${idp.jwksUri}" }
routes:
  - name: app
    match: { path: /app }
    upstream: { url: ${app.url} }
    authenticate: [keys, corp]
    authorize: { allow: [{ groups: ops }, { subject: [alice, svc-plain] }] }
  - name: open
    match: { path: /open }
    upstream: { url: ${app.url} }
    public: true
`,
      { files: { 'api-keys.yaml': KEYS } },
    );
    const snippet = readFileSync(`${root}deploy/forward-auth/nginx.conf`, 'utf8')
      .replaceAll('127.0.0.1:8443', `127.0.0.1:${gw.port}`)
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${app.port}`);
    nginx = await startNginx(snippet);
  });

  afterAll(async () => {
    await nginx?.stop();
    await gw?.close();
    await idp?.close();
    await app?.close();
    await untrusted.close();
  });

  it('no credentials: 401 from nginx, the app is never reached', async () => {
    const a = await get(`${nginx.url}/app/private`, { accept: 'application/json' });
    expect(a.status).toBe(401);
    appNeverSaw('/app/private');
  });

  it('an API key: the app is reached with the identity the gateway verified', async () => {
    const a = await get(`${nginx.url}/app/with-key?x=1`, { authorization: `ApiKey ${OPS_KEY}` });
    expect(a.status).toBe(200);
    const seen = appSaw('/app/with-key?x=1');
    expect(valuesOf(seen, 'x-zt-user')).toEqual(['svc-ops']);
    expect(valuesOf(seen, 'x-zt-groups')).toEqual(['ops']);
    expect(valuesOf(seen, 'x-zt-auth-method')).toEqual(['api_key']);
    expect(valuesOf(seen, 'x-zt-assertion')[0]).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(valuesOf(seen, 'authorization')).toEqual([]); // the key was for the gateway
    // The request id the app sees is the one in the gateway's decision record, which names the checked request.
    const [id] = valuesOf(seen, 'x-request-id');
    const record = gw.logs.find((l) => l.msg === 'decision' && l.request_id === id);
    expect(record).toMatchObject({ forward_auth: true, route: 'app', path: '/app/with-key', decision: 'allow', subject: 'svc-ops', method: 'GET', status: 200 });
  });

  it('a POST with a body: checked as a POST (X-Forwarded-Method), the body reaches only the app', async () => {
    const res = await request(`${nginx.url}/app/form`, { method: 'POST', body: 'a=1&b=2', headers: { authorization: `ApiKey ${OPS_KEY}`, 'content-type': 'application/x-www-form-urlencoded' } });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const seen = appSaw('/app/form');
    expect(seen.method).toBe('POST');
    expect(seen.bodyBytes).toBe(7);
    expect(valuesOf(seen, 'x-zt-user')).toEqual(['svc-ops']);
    const [id] = valuesOf(seen, 'x-request-id');
    expect(gw.logs.find((l) => l.msg === 'decision' && l.request_id === id)).toMatchObject({ method: 'POST', forward_auth: true });
  });

  it('a JWT: the app is reached with X-ZT-User from the token', async () => {
    const token = await idp.sign({ sub: 'alice' });
    const a = await get(`${nginx.url}/app/with-jwt`, { authorization: `Bearer ${token}` });
    expect(a.status).toBe(200);
    const seen = appSaw('/app/with-jwt');
    expect(valuesOf(seen, 'x-zt-user')).toEqual(['alice']);
    expect(valuesOf(seen, 'x-zt-auth-method')).toEqual(['jwt']);
    expect(valuesOf(seen, 'authorization')).toEqual([]);
  });

  it('identity headers sent by the client never reach the app', async () => {
    const spoof = { 'x-zt-user': 'admin', 'X-ZT-Groups': 'admins', 'x-zt-email': 'root@corp.example', 'X_ZT_User': 'admin', 'x-zt-auth-method': 'mtls' };
    // Without credentials: refused, nothing reaches the app.
    expect((await get(`${nginx.url}/app/spoof-anon`, spoof)).status).toBe(401);
    appNeverSaw('/app/spoof-anon');
    // With a key that has no groups and no email: the app sees exactly the gateway's values and nothing else.
    expect((await get(`${nginx.url}/app/spoof-key`, { ...spoof, authorization: `ApiKey ${PLAIN_KEY}` })).status).toBe(200);
    const seen = appSaw('/app/spoof-key');
    expect(valuesOf(seen, 'x-zt-user')).toEqual(['svc-plain']);
    expect(valuesOf(seen, 'x-zt-auth-method')).toEqual(['api_key']);
    expect(valuesOf(seen, 'x-zt-groups')).toEqual([]);
    expect(valuesOf(seen, 'x-zt-email')).toEqual([]);
    for (let i = 1; i < seen.rawHeaders.length; i += 2) expect(seen.rawHeaders[i]).not.toBe('admin');
  });

  it('a client-sent X-Original-URL/-Method is cleared by the snippet: the checked request is the real one', async () => {
    const forged = { 'x-original-url': `${nginx.url}/open/x`, 'x-original-method': 'GET' };
    expect((await get(`${nginx.url}/app/orig-denied`, { ...forged, authorization: `ApiKey ${DEV_KEY}` })).status).toBe(403);
    appNeverSaw('/app/orig-denied');
    expect((await get(`${nginx.url}/app/orig-ok`, { ...forged, authorization: `ApiKey ${OPS_KEY}` })).status).toBe(200);
    expect(valuesOf(appSaw('/app/orig-ok'), 'x-zt-user')).toEqual(['svc-ops']);
    expect(gw.logs.filter((l) => l.msg === 'decision' && l.code === 'GW_ERR_AMBIGUOUS_REQUEST')).toEqual([]);
  });

  it('a caller the policy does not allow: 403 from nginx, the app is never reached', async () => {
    expect((await get(`${nginx.url}/app/denied`, { authorization: `ApiKey ${DEV_KEY}` })).status).toBe(403);
    appNeverSaw('/app/denied');
  });

  it("a refused path never reaches the app: verify answers 403 + X-ZT-Error, error_page shows the gateway's 400", async () => {
    // Sent byte for byte (undici would resolve %2e%2e itself before sending).
    const send = (target: string, accept = 'application/json') =>
      rawRequest(nginx.port, rawMessage(nginx.port, target, { headers: [`Authorization: ApiKey ${OPS_KEY}`, `Accept: ${accept}`] }), { timeoutMs: 3000 });
    const attacks = ['/app/%2e%2e/admin', '/app/.%2e/admin', '/app/a%2Fb', '/app/%c0%ae%c0%ae/etc', '/app/a%5c..%5cb', '/app/..;x/admin'];
    for (const target of attacks) {
      const a = await send(target);
      // Not nginx's 500: the gateway's own answer for the code, through @zt_denied → /.zt/denied.
      expect(a.status, target).toBe(400);
      expect(a.headers['content-type'], target).toBe('application/problem+json');
      expect(JSON.parse(a.body)).toMatchObject({ status: 400, code: 'GW_ERR_BAD_PATH' });
    }
    // nginx refuses some targets itself before asking (an encoded NUL): also never forwarded.
    expect((await send('/app/x%00y')).status).toBe(400);
    expect(app.received.filter((r) => r.url.includes('%') || r.url.includes('..'))).toEqual([]);
    expect(nginx.errorLog()).not.toContain('auth request unexpected status');
    // The check itself is recorded with its real code, answered 403 for auth_request.
    const refused = gw.logs.filter((l) => l.msg === 'decision' && l.forward_auth === true && l.code === 'GW_ERR_BAD_PATH');
    expect(refused.map((l) => l.status)).toEqual(attacks.map(() => 403));
    // A browser navigation gets the same status (the page itself is the gateway's, whatever it renders).
    expect((await send('/app/%2e%2e/admin', 'text/html,application/xhtml+xml')).status).toBe(400);
  });

  it('a route nobody configured: 404 from the gateway, not 500 from nginx; a deny stays a 403 with its code', async () => {
    const a = await get(`${nginx.url}/nowhere/x`, { authorization: `ApiKey ${OPS_KEY}`, accept: 'application/json' });
    expect(a.status).toBe(404);
    expect(JSON.parse(a.body)).toMatchObject({ code: 'GW_ERR_NO_ROUTE' });
    const d = await get(`${nginx.url}/app/denied-code`, { authorization: `ApiKey ${DEV_KEY}`, accept: 'application/json' });
    expect(d.status).toBe(403);
    expect(JSON.parse(d.body)).toMatchObject({ code: 'GW_ERR_FORBIDDEN' });
    appNeverSaw('/nowhere');
    appNeverSaw('/app/denied-code');
    expect(nginx.errorLog()).not.toContain('auth request unexpected status');
  });

  it('/.zt/denied answers only its closed set of codes: a client cannot make it report anything else', async () => {
    const denied = (code: string) => get(`${nginx.url}/.zt/denied?code=${encodeURIComponent(code)}`, { accept: 'application/json' });
    expectProblem(await denied('GW_ERR_BAD_PATH'), 400, 'GW_ERR_BAD_PATH');
    expectProblem(await denied('GW_ERR_RATE_LIMITED'), 429, 'GW_ERR_RATE_LIMITED');
    for (const code of ['GW_ERR_INTERNAL', 'GW_ERR_UPSTREAM_UNAVAILABLE', 'GW_ERR_UNAUTHENTICATED', 'gw_err_bad_path', 'x<script>', '']) {
      expectProblem(await denied(code), 403, 'GW_ERR_FORBIDDEN');
    }
  });

  it('public routes pass without credentials and without identity headers', async () => {
    expect((await get(`${nginx.url}/open/page`, { 'x-zt-user': 'admin' })).status).toBe(200);
    const seen = appSaw('/open/page');
    expect(valuesOf(seen, 'x-zt-user')).toEqual([]);
  });

  it('clients cannot call /.zt/verify through nginx', async () => {
    const a = await get(`${nginx.url}/.zt/verify`, { 'x-forwarded-uri': '/app/x', 'x-forwarded-method': 'GET', 'x-forwarded-host': 'a', 'x-forwarded-proto': 'http', authorization: `ApiKey ${OPS_KEY}` });
    expect(a.status).toBe(404);
    expect(a.headers['x-zt-user']).toBeUndefined();
  });

  describe('/.zt/verify called directly', () => {
    const fwd = (uri: string, extra: Record<string, string | string[]> = {}) => ({
      'x-forwarded-method': 'GET',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'app.example.com',
      'x-forwarded-uri': uri,
      ...extra,
    });
    const verify = (headers: Record<string, string | string[]>, dispatcher?: Agent) => get(`${gw.url}/.zt/verify`, headers, dispatcher);

    it('answers 200 with the identity headers and no body to a trusted proxy', async () => {
      const a = await verify(fwd('/app/x?y=1', { authorization: `ApiKey ${OPS_KEY}`, 'x-zt-user': 'admin' }));
      expect(a.status).toBe(200);
      expect(a.body).toBe('');
      expect(a.headers['x-zt-user']).toBe('svc-ops');
      expect(a.headers['x-zt-groups']).toBe('ops');
      expect(a.headers['cache-control']).toBe('no-store');
      expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('refuses callers outside trusted_proxies (403), even with valid credentials', async () => {
      const a = await verify(fwd('/app/x', { authorization: `ApiKey ${OPS_KEY}` }), untrusted);
      expectProblem(a, 403, 'GW_ERR_FORBIDDEN');
      expect(a.headers['x-zt-user']).toBeUndefined();
    });

    it('401 without credentials, 403 when the policy denies', async () => {
      const anon = await verify(fwd('/app/x'));
      expectProblem(anon, 401, 'GW_ERR_UNAUTHENTICATED');
      expect(anon.headers['www-authenticate']).toBeDefined();
      expectProblem(await verify(fwd('/app/x', { authorization: `ApiKey ${DEV_KEY}` })), 403, 'GW_ERR_FORBIDDEN');
    });

    it('normalizes X-Forwarded-Uri like a request target: the same refusals, as 403 + X-ZT-Error for auth_request', async () => {
      const key = { authorization: `ApiKey ${OPS_KEY}` };
      const refused = async (uri: string, code: string) => {
        const a = await verify(fwd(uri, key));
        expectProblem(a, 403, code);
        expect(a.headers['x-zt-error'], uri).toBe(code);
        expect(a.headers['x-zt-user']).toBeUndefined();
        // A proxy that relays the answer (?login=redirect: Traefik, Caddy) gets the code's own status.
        const relayed = await get(`${gw.url}/.zt/verify?login=redirect`, fwd(uri, key));
        expectProblem(relayed, 400, code);
        expect(relayed.headers['x-zt-error']).toBeUndefined();
      };
      await refused('/app/%2e%2e/admin', 'GW_ERR_BAD_PATH');
      await refused('/app/..;x/admin', 'GW_ERR_BAD_PATH');
      await refused('/app//admin', 'GW_ERR_BAD_PATH');
      await refused('/app/a%5Cb', 'GW_ERR_BAD_PATH');
      await refused('/app/x?a=%zz', 'GW_ERR_BAD_QUERY');
      await refused('http://evil.example/app/x', 'GW_ERR_BAD_REQUEST');
      await refused('*', 'GW_ERR_BAD_REQUEST');
      // ;params are cut for matching, as on the main path: /app;x/ is still the app route.
      expect((await verify(fwd('/app;jsessionid=1/x', key))).status).toBe(200);
    });

    it('refuses missing, duplicate or invalid forwarded headers', async () => {
      const key = { authorization: `ApiKey ${OPS_KEY}` };
      const without = (name: string) => {
        const h: Record<string, string> = { ...fwd('/app/x'), ...key };
        delete h[name];
        return h;
      };
      for (const name of ['x-forwarded-uri', 'x-forwarded-method', 'x-forwarded-host', 'x-forwarded-proto']) {
        expectProblem(await verify(without(name)), 403, 'GW_ERR_BAD_REQUEST');
      }
      expectProblem(await verify(fwd('/app/x', { ...key, 'x-forwarded-uri': ['/open/x', '/app/x'] })), 403, 'GW_ERR_AMBIGUOUS_REQUEST');
      expectProblem(await verify(fwd('/app/x', { ...key, 'x-forwarded-method': 'CONNECT' })), 403, 'GW_ERR_BAD_METHOD');
      expectProblem(await verify(fwd('/app/x', { ...key, 'x-forwarded-method': 'get' })), 403, 'GW_ERR_BAD_METHOD');
      expectProblem(await verify(fwd('/app/x', { ...key, 'x-forwarded-proto': 'gopher' })), 403, 'GW_ERR_BAD_REQUEST');
      expectProblem(await verify(fwd('/app/x', { ...key, 'x-forwarded-host': 'user@app.example.com' })), 403, 'GW_ERR_BAD_HOST');
      const post = await request(`${gw.url}/.zt/verify`, { method: 'POST', headers: fwd('/app/x', key) });
      expectProblem({ status: post.statusCode, headers: post.headers, body: await post.body.text() }, 403, 'GW_ERR_BAD_METHOD');
    });

    it("never checks the gateway's own paths", async () => {
      expectProblem(await verify(fwd('/.zt/verify', { authorization: `ApiKey ${OPS_KEY}` })), 403, 'GW_ERR_NO_ROUTE');
      expectProblem(await verify(fwd('/.well-known/zt-gateway/jwks.json', { authorization: `ApiKey ${OPS_KEY}` })), 403, 'GW_ERR_NO_ROUTE');
    });
  });
});
