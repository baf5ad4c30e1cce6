// Envoy ext_authz HTTP mode (/.zt/ext-authz/…), called by a raw HTTP client that sends exactly what Envoy's
// http_service client sends: the original method, Host, the path behind `path_prefix`, Content-Length: 0, the
// allowed client headers (authorization, cookie, origin, sec-fetch-site) and x-forwarded-for/-proto from a
// trusted proxy address. Allowed → 200 + identity headers + x-envoy-auth-headers-to-remove; denied → the
// status and problem body Envoy relays; refused targets → 400; untrusted callers → 403. The app behind Envoy
// is never contacted by the gateway in this mode: every test ends with the upstream having received nothing.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyFixture } from '../helpers/api-keys.ts';
import { expectProblem, type Answer } from '../helpers/attack.ts';
import { parseRaw } from '../helpers/raw.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startIdp, type TestIdp } from '../helpers/idp.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const { ops: OPS_KEY, plain: PLAIN_KEY, dev: DEV_KEY, yaml: KEYS } = apiKeyFixture('ea');

let app: Upstream;
let idp: TestIdp;
let gw: TestGateway;

interface EnvoyCheck {
  method?: string;
  host?: string;
  /** The original request's path and query, sent behind the prefix. */
  path: string;
  headers?: string[];
  /** The caller's address: 127.0.0.1 is trusted, 127.0.0.3 is not. */
  from?: string;
  prefix?: string;
}

/** One check request, byte for byte as Envoy's ext_authz http_service client writes it (lower-case names). */
function envoyCheck(c: EnvoyCheck): Promise<Answer> {
  const lines = [
    `${c.method ?? 'GET'} ${c.prefix ?? '/.zt/ext-authz'}${c.path} HTTP/1.1`,
    `host: ${c.host ?? 'app.example.com'}`,
    'content-length: 0',
    ...(c.headers ?? []),
    'x-forwarded-for: 203.0.113.7',
    'x-forwarded-proto: https',
    'x-envoy-internal: true',
    'x-envoy-expected-rq-timeout-ms: 200',
    'connection: close',
  ];
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port: gw.port, localAddress: c.from ?? '127.0.0.1' });
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.once('connect', () => socket.write(`${lines.join('\r\n')}\r\n\r\n`));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (e) => {
      if (chunks.length === 0) reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const r = parseRaw(Buffer.concat(chunks).toString('latin1'));
      resolve({ status: r.status, headers: r.headers, body: r.body });
    });
  });
}

const removed = (a: Answer) => String(a.headers['x-envoy-auth-headers-to-remove'] ?? '').split(',').filter(Boolean);

describe('Envoy ext_authz HTTP mode', () => {
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
    match: { host: app.example.com, path: /app }
    upstream: { url: ${app.url} }
    authenticate: [keys, corp]
    authorize: { allow: [{ groups: ops }, { subject: [alice, svc-plain] }] }
  - name: legacy
    match: { host: legacy.example.com, path: / }
    upstream: { url: ${app.url} }
    authenticate: [keys]
    authorize: { allow: [{ groups: ops }] }
    identity_headers: { user: X-Remote-User }
  - name: open
    match: { path: /open }
    upstream: { url: ${app.url} }
    public: true
`,
      { files: { 'api-keys.yaml': KEYS } },
    );
  });

  afterAll(async () => {
    // Envoy forwards to the app itself: the gateway never did, whatever it was asked.
    expect(app?.received).toEqual([]);
    await gw?.close();
    await idp?.close();
    await app?.close();
  });

  it('allowed: 200, no body, the identity headers, and the spoofable names it does not set to remove', async () => {
    const a = await envoyCheck({ path: '/app/x?y=1', headers: [`authorization: ApiKey ${OPS_KEY}`] });
    expect(a.status).toBe(200);
    expect(a.body).toBe('');
    expect(a.headers['x-zt-user']).toBe('svc-ops');
    expect(a.headers['x-zt-groups']).toBe('ops');
    expect(a.headers['x-zt-auth-method']).toBe('api_key');
    expect(a.headers['x-zt-assertion']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(a.headers['cache-control']).toBe('no-store');
    const remove = removed(a);
    // Never a header it sets: Envoy removes after adding, which would delete the verified value.
    for (const set of ['x-zt-user', 'x-zt-groups', 'x-zt-auth-method', 'x-zt-assertion']) expect(remove).not.toContain(set);
    // Those it does not set, their `_` spellings, another route's custom name and the gateway's credential.
    for (const name of ['x-zt-email', 'x_zt_email', 'x-zt-spiffe-id', 'x_zt_user', 'x-remote-user', 'x_remote_user', 'authorization']) expect(remove).toContain(name);
    expect(remove).not.toContain('cookie');
    // The decision record names the checked request, not the check.
    const record = gw.logs.find((l) => l.msg === 'decision' && l.request_id === a.headers['x-request-id']);
    expect(record).toMatchObject({ forward_auth: true, route: 'app', path: '/app/x', decision: 'allow', subject: 'svc-ops', method: 'GET', status: 200 });
  });

  it('any method: Envoy sends the original one with Content-Length: 0', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const a = await envoyCheck({ method, path: '/app/form', headers: [`authorization: ApiKey ${OPS_KEY}`] });
      expect(a.status, method).toBe(200);
      const record = gw.logs.find((l) => l.msg === 'decision' && l.request_id === a.headers['x-request-id']);
      expect(record, method).toMatchObject({ method, forward_auth: true });
    }
  });

  it('host from Host: the same path on another host is another route, or none', async () => {
    const legacy = await envoyCheck({ host: 'legacy.example.com', path: '/app/x', headers: [`authorization: ApiKey ${OPS_KEY}`] });
    expect(legacy.status).toBe(200);
    expect(legacy.headers['x-remote-user']).toBe('svc-ops');
    expect(legacy.headers['x-zt-user']).toBeUndefined();
    // The default name is spoofable there too, and the custom one is set: only the former is removed.
    expect(removed(legacy)).toContain('x-zt-user');
    expect(removed(legacy)).not.toContain('x-remote-user');
    expectProblem(await envoyCheck({ host: 'other.example.com', path: '/app/x', headers: [`authorization: ApiKey ${OPS_KEY}`] }), 404, 'GW_ERR_NO_ROUTE');
  });

  it('denied: 401 without credentials, 403 by policy, with the problem body Envoy relays', async () => {
    const anon = expectProblem(await envoyCheck({ path: '/app/x' }), 401, 'GW_ERR_UNAUTHENTICATED');
    expect(anon.detail).toBeTruthy();
    const dev = await envoyCheck({ path: '/app/x', headers: [`authorization: ApiKey ${DEV_KEY}`] });
    expectProblem(dev, 403, 'GW_ERR_FORBIDDEN');
    expect(dev.headers['x-zt-user']).toBeUndefined();
    expect(dev.headers['x-envoy-auth-headers-to-remove']).toBeUndefined();
    const jwt = await envoyCheck({ path: '/app/x', headers: [`authorization: Bearer ${await idp.sign({}, { sub: 'mallory' })}`] });
    expectProblem(jwt, 403, 'GW_ERR_FORBIDDEN');
  });

  it('a JWT from the client reaches the check through Envoy: its subject is the identity', async () => {
    const a = await envoyCheck({ path: '/app/jwt', headers: [`authorization: Bearer ${await idp.sign({ sub: 'alice' })}`] });
    expect(a.status).toBe(200);
    expect(a.headers['x-zt-user']).toBe('alice');
    expect(a.headers['x-zt-auth-method']).toBe('jwt');
  });

  it('refuses targets it would refuse on its own listener (400), before any credential is looked at', async () => {
    const key = [`authorization: ApiKey ${OPS_KEY}`];
    const paths: Array<[string, string]> = [
      ['/app/%2e%2e/admin', 'GW_ERR_BAD_PATH'],
      ['/app/.%2E/admin', 'GW_ERR_BAD_PATH'],
      ['/app/..;x/admin', 'GW_ERR_BAD_PATH'],
      ['/app/a%2Fb', 'GW_ERR_BAD_PATH'],
      ['/app/a%5cb', 'GW_ERR_BAD_PATH'],
      ['/app//x', 'GW_ERR_BAD_PATH'],
      ['/app/%c0%ae%c0%ae/x', 'GW_ERR_BAD_PATH'],
      ['/app/x?a=%zz', 'GW_ERR_BAD_QUERY'],
    ];
    for (const [path, code] of paths) {
      const a = await envoyCheck({ path, headers: key });
      expectProblem(a, 400, code);
      expect(a.headers['x-zt-user'], path).toBeUndefined();
    }
    // The prefix itself must be exact: `;params` on it, or no path after it.
    expectProblem(await envoyCheck({ prefix: '/.zt/ext-authz;v=1', path: '/app/x', headers: key }), 400, 'GW_ERR_BAD_PATH');
    expectProblem(await envoyCheck({ path: '', headers: key }), 400, 'GW_ERR_BAD_PATH');
    // ;params are cut for matching, as on the main path: still the app route.
    expect((await envoyCheck({ path: '/app;jsessionid=1/x', headers: key })).status).toBe(200);
  });

  it("never checks the gateway's own paths", async () => {
    const key = [`authorization: ApiKey ${OPS_KEY}`];
    expectProblem(await envoyCheck({ path: '/.zt/verify', headers: key }), 404, 'GW_ERR_NO_ROUTE');
    expectProblem(await envoyCheck({ path: '/.zt/ext-authz/app/x', headers: key }), 404, 'GW_ERR_NO_ROUTE');
    expectProblem(await envoyCheck({ path: '/.well-known/zt-gateway/jwks.json', headers: key }), 404, 'GW_ERR_NO_ROUTE');
  });

  it('spoofed identity headers sent along to the check are never echoed as identity', async () => {
    const spoof = ['x-zt-user: admin', 'x-zt-groups: admins', 'x-zt-email: root@corp.example', 'x_zt_user: admin', 'x-remote-user: admin'];
    // Without credentials: refused, whatever the headers claim.
    expectProblem(await envoyCheck({ path: '/app/spoof', headers: spoof }), 401, 'GW_ERR_UNAUTHENTICATED');
    const a = await envoyCheck({ path: '/app/spoof', headers: [...spoof, `authorization: ApiKey ${PLAIN_KEY}`] });
    expect(a.status).toBe(200);
    expect(a.headers['x-zt-user']).toBe('svc-plain');
    expect(a.headers['x-zt-groups']).toBeUndefined();
    // Everything the client sent under those names is removed upstream, except what the answer overwrites.
    expect(removed(a)).toEqual(expect.arrayContaining(['x-zt-groups', 'x-zt-email', 'x_zt_user', 'x-remote-user']));
    expect(JSON.stringify(a.headers)).not.toContain('admin');
  });

  it('a duplicate Authorization is ambiguous (400), as on the main listener', async () => {
    const a = await envoyCheck({ path: '/app/x', headers: [`authorization: ApiKey ${OPS_KEY}`, `authorization: ApiKey ${DEV_KEY}`] });
    expectProblem(a, 400, 'GW_ERR_AMBIGUOUS_REQUEST');
  });

  it('answers only trusted proxies: 403 to any other caller, even with valid credentials', async () => {
    const a = await envoyCheck({ path: '/app/x', from: '127.0.0.3', headers: [`authorization: ApiKey ${OPS_KEY}`] });
    expectProblem(a, 403, 'GW_ERR_FORBIDDEN');
    expect(a.headers['x-zt-user']).toBeUndefined();
    expect(a.headers['x-envoy-auth-headers-to-remove']).toBeUndefined();
  });

  it('public routes: 200 without identity, every identity name removed', async () => {
    const a = await envoyCheck({ path: '/open/page', headers: ['x-zt-user: admin'] });
    expect(a.status).toBe(200);
    expect(a.headers['x-zt-user']).toBeUndefined();
    expect(removed(a)).toEqual(expect.arrayContaining(['x-zt-user', 'x-zt-groups', 'x-zt-auth-method', 'x-zt-assertion', 'x_zt_user']));
  });
});
