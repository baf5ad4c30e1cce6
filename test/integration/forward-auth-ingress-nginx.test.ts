// ingress-nginx `auth-url` style forward-auth through a REAL nginx: the auth subrequest describes the request
// with X-Original-URL ($scheme://$http_host$request_uri) and X-Original-Method, as ingress-nginx generates it,
// and passes the client's own headers along. The gateway takes scheme, host and target from X-Original-URL,
// normalized like any target; a client-sent X-Forwarded-Uri that names another request is refused (403 with
// X-ZT-Error: auth_request relays only 401/403), so a
// client cannot choose the path that gets checked. Then /.zt/verify called directly with X-Original-*, and the
// hostile side: X-Original-* sent to the gateway's own listener never reach an upstream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { apiKeyFixture } from '../helpers/api-keys.ts';
import { expectProblem, expectRefused, raw, rawMessage, receivedOnce, valuesOf, type Answer } from '../helpers/attack.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { IN_CI } from '../helpers/redis.ts';
import { nginxAvailable, startNginx, type Nginx } from '../helpers/nginx.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const available = nginxAvailable(); // throws under CI=true when nginx is missing
if (!available && !IN_CI) console.warn('forward-auth-ingress-nginx.test.ts: nginx is not installed here; skipping (apt-get install nginx)');

const { ops: OPS_KEY, dev: DEV_KEY, yaml: KEYS } = apiKeyFixture('in');

/**
 * What ingress-nginx renders for `nginx.ingress.kubernetes.io/auth-url` + `auth-response-headers`: an internal
 * auth location that proxies to the auth URL with X-Original-URL/-Method (and without the body), and the
 * app location copying the answer's headers over the client's.
 */
function ingressNginxServer(gatewayPort: number, appPort: number): string {
  return `
location = /_external-auth {
    internal;
    proxy_pass http://127.0.0.1:${gatewayPort}/.zt/verify;
    proxy_pass_request_body off;
    proxy_set_header Content-Length    "";
    proxy_set_header X-Original-URL    $scheme://$http_host$request_uri;
    proxy_set_header X-Original-Method $request_method;
    proxy_set_header X-Sent-From       "nginx-ingress-controller";
    proxy_set_header X-Real-IP         $remote_addr;
    proxy_set_header X-Forwarded-For   $remote_addr;
    proxy_set_header X-Auth-Request-Redirect $request_uri;
}
location / {
    auth_request /_external-auth;
    auth_request_set $authHeader0 $upstream_http_x_zt_user;
    proxy_set_header 'X-ZT-User' $authHeader0;
    auth_request_set $authHeader1 $upstream_http_x_zt_groups;
    proxy_set_header 'X-ZT-Groups' $authHeader1;
    auth_request_set $authHeader2 $upstream_http_x_zt_auth_method;
    proxy_set_header 'X-ZT-Auth-Method' $authHeader2;
    proxy_set_header Authorization "";
    proxy_pass http://127.0.0.1:${appPort};
}
`;
}

let app: Upstream;
let gw: TestGateway;
let nginx: Nginx;

async function get(url: string, headers: Record<string, string | string[]> = {}): Promise<Answer> {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

const appNeverSaw = (prefix: string) => expect(app.received.filter((r) => r.url.startsWith(prefix))).toEqual([]);

describe.skipIf(!available)('ingress-nginx auth-url (X-Original-URL) through a real nginx', () => {
  beforeAll(async () => {
    app = await startUpstream();
    gw = await startGateway(
      `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
trusted_proxies: [127.0.0.1/32]
identity_providers:
  keys: { type: api_key, keys_file: api-keys.yaml }
routes:
  - name: app
    match: { path: /app }
    upstream: { url: ${app.url} }
    authenticate: [keys]
    authorize: { allow: [{ groups: ops }] }
  - name: open
    match: { path: /open }
    upstream: { url: ${app.url} }
    public: true
`,
      { files: { 'api-keys.yaml': KEYS } },
    );
    nginx = await startNginx(ingressNginxServer(gw.port, app.port));
  });

  afterAll(async () => {
    await nginx?.stop();
    await gw?.close();
    await app?.close();
  });

  it('an API key: checked as the URL nginx names, the app reached with the verified identity', async () => {
    const a = await get(`${nginx.url}/app/page?x=1`, { authorization: `ApiKey ${OPS_KEY}` });
    expect(a.status).toBe(200);
    const seen = receivedOnce(app, '/app/page?x=1');
    expect(valuesOf(seen, 'x-zt-user')).toEqual(['svc-ops']);
    expect(valuesOf(seen, 'x-zt-groups')).toEqual(['ops']);
    expect(valuesOf(seen, 'authorization')).toEqual([]);
    const record = gw.logs.find((l) => l.msg === 'decision' && l.forward_auth === true && l.path === '/app/page');
    expect(record).toMatchObject({ route: 'app', decision: 'allow', subject: 'svc-ops', method: 'GET', status: 200 });
  });

  it('the method comes from X-Original-Method', async () => {
    const res = await request(`${nginx.url}/app/form`, { method: 'DELETE', headers: { authorization: `ApiKey ${OPS_KEY}` } });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(receivedOnce(app, '/app/form').method).toBe('DELETE');
    expect(gw.logs.find((l) => l.msg === 'decision' && l.forward_auth === true && l.path === '/app/form')).toMatchObject({ method: 'DELETE' });
  });

  it('no credentials: 401; a caller the policy refuses: 403; the app never reached', async () => {
    expect((await get(`${nginx.url}/app/anon`)).status).toBe(401);
    expect((await get(`${nginx.url}/app/dev`, { authorization: `ApiKey ${DEV_KEY}` })).status).toBe(403);
    appNeverSaw('/app/anon');
    appNeverSaw('/app/dev');
  });

  it('a client-sent X-Forwarded-Uri naming another path is refused (403 + X-ZT-Error), the app never reached', async () => {
    // nginx's auth subrequest passes these client headers along next to X-Original-URL: the public /open path
    // must not be what gets checked for /app/secret.
    const forged = { 'x-forwarded-uri': '/open/x', 'x-forwarded-method': 'GET', 'x-forwarded-host': '127.0.0.1', 'x-forwarded-proto': 'http' };
    const a = await get(`${nginx.url}/app/secret`, { ...forged, authorization: `ApiKey ${DEV_KEY}` });
    expect(a.status).toBe(403); // auth_request relays 403 (a 400 would have become nginx's 500)
    appNeverSaw('/app/secret');
    const refused = gw.logs.filter((l) => l.msg === 'decision' && l.code === 'GW_ERR_AMBIGUOUS_REQUEST');
    expect(refused.map((l) => l.status)).toEqual([403]);
    // The same headers naming the same request agree: checked normally.
    const port = nginx.port;
    const same = await get(`${nginx.url}/app/same`, { ...forged, 'x-forwarded-uri': '/app/same', 'x-forwarded-host': `127.0.0.1:${port}`, authorization: `ApiKey ${OPS_KEY}` });
    expect(same.status).toBe(200);
    expect(valuesOf(receivedOnce(app, '/app/same'), 'x-zt-user')).toEqual(['svc-ops']);
  });

  it('refused paths never reach the app: X-Original-URL is normalized like any target', async () => {
    const send = (target: string) => rawRequest(nginx.port, rawMessage(nginx.port, target, { headers: [`Authorization: ApiKey ${OPS_KEY}`] }), { timeoutMs: 3000 });
    const attacks = ['/app/%2e%2e/admin', '/app/.%2e/admin', '/app/a%2Fb', '/app/%c0%ae%c0%ae/etc', '/app/..;x/admin'];
    for (const target of attacks) expect((await send(target)).status, target).toBe(403);
    expect(app.received.filter((r) => r.url.includes('%') || r.url.includes('..'))).toEqual([]);
    expect(nginx.errorLog()).not.toContain('auth request unexpected status');
    const refused = gw.logs.filter((l) => l.msg === 'decision' && l.forward_auth === true && l.code === 'GW_ERR_BAD_PATH');
    expect(refused.map((l) => l.status)).toEqual(attacks.map(() => 403));
  });

  describe('/.zt/verify called directly with X-Original-*', () => {
    const verify = (headers: Record<string, string | string[]>) => get(`${gw.url}/.zt/verify`, { authorization: `ApiKey ${OPS_KEY}`, ...headers });
    const orig = (url: string, method = 'GET') => ({ 'x-original-url': url, 'x-original-method': method });

    it('scheme, host and target come from X-Original-URL', async () => {
      expect((await verify(orig('https://app.example.com/app/x?y=1'))).status).toBe(200);
      // An empty path is the root; a query right after the authority is `/?…`.
      expect((await verify(orig('https://app.example.com'))).status).toBe(403); // no route, as 403 + X-ZT-Error for auth_request
      expect((await verify(orig('http://app.example.com:8080?x=1'))).status).toBe(403); // no route, as 403 + X-ZT-Error for auth_request
      expectProblem(await verify(orig('https://other.example.com:99999/app/x')), 403, 'GW_ERR_BAD_HOST');
    });

    it('refuses userinfo, relative or non-http URLs, and the same path tricks as any target', async () => {
      expectProblem(await verify(orig('https://user@app.example.com/app/x')), 403, 'GW_ERR_BAD_HOST');
      expectProblem(await verify(orig('https://user:pw@app.example.com/app/x')), 403, 'GW_ERR_BAD_HOST');
      expectProblem(await verify(orig('/app/x')), 403, 'GW_ERR_BAD_REQUEST');
      expectProblem(await verify(orig('ftp://app.example.com/app/x')), 403, 'GW_ERR_BAD_REQUEST');
      expectProblem(await verify(orig('https://app.example.com/app/%2e%2e/admin')), 403, 'GW_ERR_BAD_PATH');
      expectProblem(await verify(orig('https://app.example.com/app//x')), 403, 'GW_ERR_BAD_PATH');
      expectProblem(await verify(orig('https://app.example.com/app/x#frag')), 403, ['GW_ERR_BAD_PATH', 'GW_ERR_BAD_REQUEST']);
      expectProblem(await verify(orig('https://app.example.com/app/x', 'CONNECT')), 403, 'GW_ERR_BAD_METHOD');
    });

    it('needs a method, and exactly one of each header', async () => {
      expectProblem(await verify({ 'x-original-url': 'https://app.example.com/app/x' }), 403, 'GW_ERR_BAD_REQUEST');
      expectProblem(await verify({ ...orig('https://app.example.com/app/x'), 'x-original-url': ['https://app.example.com/app/x', 'https://app.example.com/open/x'] }), 403, 'GW_ERR_AMBIGUOUS_REQUEST');
      expectProblem(await verify({ ...orig('https://app.example.com/app/x'), 'x-original-method': ['GET', 'POST'] }), 403, 'GW_ERR_AMBIGUOUS_REQUEST');
    });

    it('X-Forwarded-* and X-Original-* disagreeing on path, host, scheme or method: refused (403 + X-ZT-Error)', async () => {
      const fwd = { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com', 'x-forwarded-uri': '/app/x' };
      expect((await verify({ ...fwd, ...orig('https://app.example.com/app/x') })).status).toBe(200);
      // Canonically equal spellings agree (host case, an unreserved escape).
      expect((await verify({ ...fwd, ...orig('https://APP.example.com/app/%78') })).status).toBe(200);
      for (const url of ['https://app.example.com/open/x', 'https://other.example.com/app/x', 'http://app.example.com/app/x', 'https://app.example.com/app/x?y']) {
        expectProblem(await verify({ ...fwd, ...orig(url) }), 403, 'GW_ERR_AMBIGUOUS_REQUEST');
      }
      expectProblem(await verify({ ...fwd, ...orig('https://app.example.com/app/x', 'POST') }), 403, 'GW_ERR_AMBIGUOUS_REQUEST');
    });
  });
});

describe('X-Original-* and rewrite headers toward upstreams', () => {
  let up: Upstream;
  let direct: TestGateway;

  beforeAll(async () => {
    up = await startUpstream();
    direct = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
trusted_proxies: [127.0.0.1/32]
routes:
  - name: open
    match: { path: / }
    upstream: { url: ${up.url} }
    public: true
`);
  });

  afterAll(async () => {
    await direct?.close();
    await up?.close();
  });

  it('never reach the upstream, from any caller and in any spelling', async () => {
    const lines = [
      'X-Original-URL: /admin',
      'X-Original-URI: /admin',
      'X-Original-Method: DELETE',
      'X_Original_Method: DELETE',
      'x-original-method_: DELETE',
      'X-Rewrite-URL: /admin',
      'X-Forwarded-Uri: /admin',
      'X-Forwarded-Method: DELETE',
      'X-Keep: yes',
    ];
    const a = await rawRequest(direct.port, rawMessage(direct.port, '/page', { headers: lines }), { timeoutMs: 3000 });
    expect(a.status).toBe(200);
    const seen = receivedOnce(up, '/page');
    expect(seen.method).toBe('GET');
    for (const name of ['x-original-url', 'x-original-uri', 'x-original-method', 'x-rewrite-url', 'x-forwarded-uri', 'x-forwarded-method']) expect(valuesOf(seen, name), name).toEqual([]);
    for (let i = 1; i < seen.rawHeaders.length; i += 2) expect(seen.rawHeaders[i]).not.toMatch(/admin|DELETE/);
    expect(valuesOf(seen, 'x-keep')).toEqual(['yes']);
  });

  it('on a route that is refused, nothing reaches the upstream at all', async () => {
    await expectRefused(direct, up, () => raw(direct, '/a/%2e%2e/b', { headers: ['X-Original-URL: /b'] }), 400, 'GW_ERR_BAD_PATH');
  });
});
