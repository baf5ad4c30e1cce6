// Route-level authorization against a real gateway and upstream: allow forwards, deny answers 403 and the
// upstream sees nothing, report-only forwards and audits would_deny, source_ip believes X-Forwarded-For
// only from trusted_proxies, devices come from a trusted header. Callers prove identity with real API keys
// and HS256 JWTs.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/authn/api-key.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';

const key = (name: string) => `ztk_${name}_${randomBytes(24).toString('base64url')}`;
const KEY = { root: key('root'), alice: key('alice'), mallory: key('mallory'), bot: key('bot') };
const JWT_SECRET = randomBytes(32).toString('base64url');
const ISSUER = 'https://idp.authz.test';

const KEYS_YAML = `keys:
  - { id: root, hash: ${hashKey(KEY.root)}, subject: root, groups: [admins] }
  - { id: alice, hash: ${hashKey(KEY.alice)}, subject: alice, groups: [staff] }
  - { id: mallory, hash: ${hashKey(KEY.mallory)}, subject: mallory, groups: [staff] }
  - { id: bot, hash: ${hashKey(KEY.bot)}, subject: bot }
`;

const DEVICES_YAML = `devices:
  - { id: laptop-known, owner: alice }
  - { id: laptop-trusted, owner: alice, trusted: true }
  - { id: laptop-stolen, owner: alice, trusted: true, revoked: true }
`;

function config(up: string): string {
  const upstream = `upstream: { url: ${up}, timeout: 2s, connect_timeout: 1s }`;
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
trusted_proxies: [127.0.0.1/32]
identity_headers: { assertion: false }
devices: { inventory: devices.yaml, header: X-Device-Id }
identity_providers:
  keys: { type: api_key, keys_file: keys.yaml }
  corp: { type: jwt, issuer: ${ISSUER}, audiences: [gw], algorithms: [HS256], secret: "\${env:JWT_SECRET}" }
routes:
  - name: admin
    match: { path: /admin }
    ${upstream}
    authenticate: [keys]
    authorize:
      allow: [{ name: admins, groups: admins }]
  - name: app
    match: { path: /app }
    ${upstream}
    authenticate: [keys, corp]
    authorize:
      deny:
        - { name: no-mallory, subject: mallory }
      allow:
        - { name: staff-read, groups: staff, http_methods: [GET, HEAD] }
        - { name: writers, claims: { scope: { contains: write } }, mfa: true }
        - { name: reports, subject: bot, paths: /app/reports }
  - name: legacy
    match: { path: /legacy }
    ${upstream}
    authenticate: [keys]
    mode: report-only
    authorize:
      deny: [{ name: no-mallory, subject: mallory }]
      allow: [{ name: admins, groups: admins }]
  - name: office
    match: { path: /office }
    ${upstream}
    authenticate: [keys]
    authorize:
      allow: [{ name: office-net, source_ip: [203.0.113.0/24, "2001:db8::/32"] }]
  - name: device
    match: { path: /device }
    ${upstream}
    authenticate: [keys]
    authorize:
      allow: [{ name: trusted-device, device: trusted }]
  - name: intranet-assets
    match: { path: /static/intranet }
    ${upstream}
    public: true
    authorize:
      allow: [{ name: office-net, source_ip: 203.0.113.0/24 }]
  - name: static
    match: { path: /static }
    ${upstream}
    public: true
`;
}

let upstream: Upstream;
let gw: TestGateway;
/** Connects from 127.0.0.2: a peer that is NOT in trusted_proxies. */
let untrusted: Agent;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(config(upstream.url), {
    files: { 'keys.yaml': KEYS_YAML, 'devices.yaml': DEVICES_YAML },
    env: { JWT_SECRET },
  });
  // undici ignores connect.localAddress: connect the socket ourselves.
  untrusted = new Agent({
    connect: (opts, cb) => {
      const socket = net.connect({ host: opts.hostname, port: Number(opts.port), localAddress: '127.0.0.2' });
      socket.once('connect', () => cb(null, socket));
      socket.once('error', (err) => cb(err, null));
    },
  });
});
afterAll(async () => {
  await untrusted?.close();
  await gw?.close();
  await upstream?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  /** What the upstream received for this request (undefined: nothing reached it). */
  received: Received | undefined;
  id: string;
  audit: Record<string, unknown>;
}

async function call(
  path: string,
  opts: { method?: string; key?: string; token?: string; headers?: Record<string, string>; dispatcher?: Agent } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `ApiKey ${opts.key}`;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const before = upstream.received.length;
  const res = await request(`${gw.url}${path}`, { method: (opts.method ?? 'GET') as 'GET', headers, dispatcher: opts.dispatcher });
  const text = await res.body.text();
  const id = res.headers['x-request-id'] as string;
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  const body = String(res.headers['content-type']).includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {};
  const received = upstream.received.slice(before).find((r) => r.headers['x-request-id'] === id);
  expect(upstream.received.length - before).toBe(received ? 1 : 0);
  const audits = () => gw.logs.filter((l) => l.audit === true && l.msg === 'decision' && l.request_id === id);
  await waitFor(() => audits().length > 0);
  expect(audits()).toHaveLength(1);
  return { status: res.statusCode, headers: res.headers, body, received, id, audit: audits()[0] as Record<string, unknown> };
}

function expectForwarded(a: Answer, url: string): void {
  expect(a.status).toBe(200);
  expect(a.received?.url).toBe(url);
  expect(a.received?.headers.authorization).toBeUndefined();
}

function expectForbidden(a: Answer): void {
  expect(a.status).toBe(403);
  expect(a.body).toMatchObject({ code: 'GW_ERR_FORBIDDEN', status: 403, request_id: a.id });
  expect(a.headers['content-type']).toBe('application/problem+json');
  expect(a.received).toBeUndefined();
  expect(a.audit).toMatchObject({ decision: 'deny', status: 403, code: 'GW_ERR_FORBIDDEN' });
}

function jwt(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience('gw')
    .setSubject('erin')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

describe('allow and deny', () => {
  it('forwards an allowed request to the upstream with the verified identity', async () => {
    const a = await call('/admin/users?page=2', { key: KEY.root });
    expectForwarded(a, '/admin/users?page=2');
    expect(a.received?.headers['x-zt-user']).toBe('root');
    expect(a.audit).toMatchObject({ decision: 'allow', route: 'admin', subject: 'root', rule: 'admins', reasons: [{ rule: 'admins', reason: 'rule-matched' }], status: 200 });
  });

  it('answers 403 GW_ERR_FORBIDDEN to a denied request; the upstream receives nothing', async () => {
    const a = await call('/admin/users', { key: KEY.alice });
    expectForbidden(a);
    expect(a.audit).toMatchObject({ route: 'admin', subject: 'alice', reasons: [{ rule: 'admins', reason: 'groups-unauthorized' }] });
    expect(a.audit.rule).toBeUndefined();
  });

  it('denies POST for a GET-only rule and without a body reaching the upstream', async () => {
    const res = await request(`${gw.url}/app/drafts`, { method: 'POST', headers: { authorization: `ApiKey ${KEY.alice}`, 'content-type': 'text/plain' }, body: 'secret note' });
    expect(res.statusCode).toBe(403);
    expect(((await res.body.json()) as { code: string }).code).toBe('GW_ERR_FORBIDDEN');
    expect(upstream.received.some((r) => r.url === '/app/drafts')).toBe(false);
  });

  it('deny overrides allow', async () => {
    expectForwarded(await call('/app/page', { key: KEY.alice }), '/app/page');
    const a = await call('/app/page', { key: KEY.mallory }); // staff, like alice, but denied by name
    expectForbidden(a);
    expect(a.audit).toMatchObject({ subject: 'mallory', rule: 'no-mallory', reasons: [{ rule: 'no-mallory', reason: 'deny-rule-matched' }] });
  });

  it('default deny lists why each allow rule failed', async () => {
    const a = await call('/app/page', { method: 'DELETE', key: KEY.alice });
    expectForbidden(a);
    expect(a.audit.reasons).toEqual([
      { rule: 'staff-read', reason: 'http-method-unauthorized' },
      { rule: 'writers', reason: 'claims-unauthorized' },
      { rule: 'writers', reason: 'mfa-required' },
      { rule: 'reports', reason: 'subject-unauthorized' },
      { rule: 'reports', reason: 'path-unauthorized' },
    ]);
  });

  it('checks JWT claims and MFA (scope contains write, amr has otp)', async () => {
    const writer = await jwt({ scope: 'read write', amr: ['pwd', 'otp'] });
    const a = await call('/app/notes', { method: 'POST', token: writer });
    expectForwarded(a, '/app/notes');
    expect(a.audit).toMatchObject({ decision: 'allow', subject: 'erin', auth_method: 'jwt', provider: 'corp', rule: 'writers' });

    const noMfa = await call('/app/notes', { method: 'POST', token: await jwt({ scope: 'read write', amr: ['pwd'] }) });
    expectForbidden(noMfa);
    expect(noMfa.audit.reasons).toContainEqual({ rule: 'writers', reason: 'mfa-required' });
    expect(noMfa.audit.reasons).not.toContainEqual({ rule: 'writers', reason: 'claims-unauthorized' });

    const reader = await call('/app/notes', { method: 'POST', token: await jwt({ scope: 'read writer', amr: ['otp'] }) });
    expectForbidden(reader);
    expect(reader.audit.reasons).toContainEqual({ rule: 'writers', reason: 'claims-unauthorized' });
  });

  it('matches paths rules at segment boundaries on the canonical path', async () => {
    expectForwarded(await call('/app/reports/q3', { key: KEY.bot }), '/app/reports/q3');
    expectForwarded(await call('/app/reports', { key: KEY.bot }), '/app/reports');
    // Percent-encoded unreserved characters are decoded once; the forwarded path is what was authorized.
    expectForwarded(await call('/app/%72eports/q4', { key: KEY.bot }), '/app/reports/q4');
    const outside = await call('/app/reportsx', { key: KEY.bot });
    expectForbidden(outside);
    expect(outside.audit.reasons).toContainEqual({ rule: 'reports', reason: 'path-unauthorized' });
    expectForbidden(await call('/app/accounts', { key: KEY.bot }));
  });
});

describe('report-only mode', () => {
  it('forwards a request the policy denies and audits would_deny with the reasons', async () => {
    const a = await call('/legacy/page?x=1', { key: KEY.alice });
    expectForwarded(a, '/legacy/page?x=1');
    expect(a.received?.headers['x-zt-user']).toBe('alice');
    expect(a.audit).toMatchObject({
      decision: 'would_deny',
      route: 'legacy',
      mode: 'report-only',
      subject: 'alice',
      reasons: [{ rule: 'admins', reason: 'groups-unauthorized' }],
      status: 200,
    });
    expect(a.audit.rule).toBeUndefined();
    expect(a.audit.code).toBeUndefined();
  });

  it('forwards a request a deny rule matches, audited as would_deny with that rule', async () => {
    const a = await call('/legacy/page', { key: KEY.mallory });
    expectForwarded(a, '/legacy/page');
    expect(a.audit).toMatchObject({ decision: 'would_deny', rule: 'no-mallory', reasons: [{ rule: 'no-mallory', reason: 'deny-rule-matched' }], status: 200 });
  });

  it('audits an allowed request on a report-only route as allow', async () => {
    const a = await call('/legacy/page', { key: KEY.root });
    expectForwarded(a, '/legacy/page');
    expect(a.audit).toMatchObject({ decision: 'allow', mode: 'report-only', rule: 'admins' });
  });

  it('still requires authentication: report-only is about authorization only', async () => {
    const a = await call('/legacy/page');
    expect(a.status).toBe(401);
    expect(a.received).toBeUndefined();
    expect(a.audit).toMatchObject({ decision: 'unauthenticated', route: 'legacy', status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
  });
});

describe('authentication outcomes', () => {
  it('401 without credentials, audited as unauthenticated', async () => {
    const a = await call('/admin/users');
    expect(a.status).toBe(401);
    expect(a.body).toMatchObject({ code: 'GW_ERR_UNAUTHENTICATED', request_id: a.id });
    expect(a.headers['www-authenticate']).toBe('ApiKey realm="zt-gateway"');
    expect(a.received).toBeUndefined();
    expect(a.audit).toMatchObject({ decision: 'unauthenticated', route: 'admin', status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
    expect(a.audit.subject).toBeUndefined();
    expect(a.audit.reasons).toBeUndefined();
  });

  it('401 for a wrong key, audited as unauthenticated', async () => {
    const a = await call('/admin/users', { key: key('forged') });
    expect(a.status).toBe(401);
    expect(a.received).toBeUndefined();
    expect(a.audit).toMatchObject({ decision: 'unauthenticated', status: 401 });
  });

  it('a public route forwards without identity and is audited as public', async () => {
    const a = await call('/static/app.css', { headers: { 'x-zt-user': 'root' } });
    expectForwarded(a, '/static/app.css');
    expect(a.received?.headers['x-zt-user']).toBeUndefined();
    expect(a.audit).toMatchObject({ decision: 'public', route: 'static', status: 200 });
    expect(a.audit.subject).toBeUndefined();
  });

  it('a public route with a policy: allowed requests are audited as public, refused ones as deny', async () => {
    const inside = await call('/static/intranet/logo.png', { headers: { 'x-forwarded-for': '203.0.113.4' } });
    expectForwarded(inside, '/static/intranet/logo.png');
    expect(inside.audit).toMatchObject({ decision: 'public', route: 'intranet-assets', rule: 'office-net', status: 200 });
    expect(inside.audit.subject).toBeUndefined();
    const outside = await call('/static/intranet/logo.png', { headers: { 'x-forwarded-for': '198.51.100.4' } });
    expectForbidden(outside);
    expect(outside.audit).toMatchObject({ route: 'intranet-assets', reasons: [{ rule: 'office-net', reason: 'source-ip-unauthorized' }] });
  });

  it('404 for a path no route matches: nothing forwarded, audited as no_route', async () => {
    const a = await call('/nowhere', { key: KEY.root });
    expect(a.status).toBe(404);
    expect(a.received).toBeUndefined();
    expect(a.audit).toMatchObject({ decision: 'no_route', status: 404, code: 'GW_ERR_NO_ROUTE' });
  });
});

describe('source_ip and X-Forwarded-For', () => {
  it('believes X-Forwarded-For from a trusted proxy', async () => {
    const a = await call('/office/wiki', { key: KEY.alice, headers: { 'x-forwarded-for': '203.0.113.9' } });
    expectForwarded(a, '/office/wiki');
    expect(a.audit).toMatchObject({ decision: 'allow', client_ip: '203.0.113.9', rule: 'office-net' });
    expect(a.received?.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
  });

  it('matches IPv6 clients named by a trusted proxy', async () => {
    const a = await call('/office/wiki', { key: KEY.alice, headers: { 'x-forwarded-for': '2001:db8::42' } });
    expectForwarded(a, '/office/wiki');
    expect(a.audit.client_ip).toBe('2001:db8::42');
  });

  it('denies a trusted proxy that names an address outside the rule', async () => {
    const a = await call('/office/wiki', { key: KEY.alice, headers: { 'x-forwarded-for': '198.51.100.1' } });
    expectForbidden(a);
    expect(a.audit).toMatchObject({ client_ip: '198.51.100.1', reasons: [{ rule: 'office-net', reason: 'source-ip-unauthorized' }] });
  });

  it('uses the right-most untrusted entry: a client-prepended office address does not count', async () => {
    const a = await call('/office/wiki', { key: KEY.alice, headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.7' } });
    expectForbidden(a);
    expect(a.audit.client_ip).toBe('198.51.100.7');
  });

  it('ignores a spoofed X-Forwarded-For from an untrusted peer', async () => {
    const a = await call('/office/wiki', { key: KEY.alice, headers: { 'x-forwarded-for': '203.0.113.9' }, dispatcher: untrusted });
    expectForbidden(a);
    expect(a.audit).toMatchObject({ client_ip: '127.0.0.2', reasons: [{ rule: 'office-net', reason: 'source-ip-unauthorized' }] });
  });
});

describe('device', () => {
  it('accepts a trusted device named by a trusted proxy', async () => {
    const a = await call('/device/x', { key: KEY.alice, headers: { 'x-device-id': 'laptop-trusted' } });
    expectForwarded(a, '/device/x');
    expect(a.audit).toMatchObject({ decision: 'allow', rule: 'trusted-device' });
  });

  it.each([
    ['laptop-known', 'device-untrusted'],
    ['laptop-stolen', 'device-revoked'],
    ['laptop-unknown', 'device-unknown'],
  ])('refuses %s (%s)', async (id, reason) => {
    const a = await call('/device/x', { key: KEY.alice, headers: { 'x-device-id': id } });
    expectForbidden(a);
    expect(a.audit.reasons).toEqual([{ rule: 'trusted-device', reason }]);
  });

  it('ignores the device header from an untrusted peer', async () => {
    const a = await call('/device/x', { key: KEY.alice, headers: { 'x-device-id': 'laptop-trusted' }, dispatcher: untrusted });
    expectForbidden(a);
    expect(a.audit.reasons).toEqual([{ rule: 'trusted-device', reason: 'device-unknown' }]);
  });
});
