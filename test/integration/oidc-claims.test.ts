// Claims as IdPs send them (issue 19): a real oidc-provider issuing Keycloak-shaped ID tokens
// (realm_access.roles, resource_access.<client>.roles) and Entra-overage-shaped ones (`_claim_names`,
// `_claim_sources` naming a hostile endpoint); a local Graph stand-in (POST /me/getMemberGroups) that records
// every call; JWT bearer callers through test/helpers/idp.ts. Asserted on the wire: what the upstream got
// (exact X-ZT-Groups), that Graph got the user's access token, and that the token's endpoint got nothing.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createCA } from '../../tools/pki.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startIdp, type TestIdp } from '../helpers/idp.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { CookieJar, loginAtProvider, startOidcGateway, startOidcProvider, type OidcGateway, type Reply, type TestOP } from '../helpers/oidc-provider.ts';
import { waitFor } from '../helpers/wait.ts';

const HTML = { accept: 'text/html' };

interface Recorded {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

interface Recorder {
  url: string;
  calls: Recorded[];
  /** How the next answers go: JSON value list, an HTTP status, or never. */
  mode: { value: unknown } | number | 'hang';
  close(): Promise<void>;
}

async function startRecorder(): Promise<Recorder> {
  const calls: Recorded[] = [];
  const hanging = new Set<ServerResponse>();
  const rec: Recorder = { url: '', calls, mode: { value: [] }, close: async () => undefined };
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body: Buffer.concat(chunks).toString('utf8') });
      const mode = rec.mode;
      if (mode === 'hang') {
        hanging.add(res);
        return;
      }
      if (typeof mode === 'number') {
        res.writeHead(mode, { 'content-type': 'application/json' }).end('{"error":{"code":"InvalidAuthenticationToken"}}');
        return;
      }
      const text = JSON.stringify({ '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)', value: mode.value });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  rec.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  rec.close = () =>
    new Promise<void>((r) => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close(() => r());
    });
  return rec;
}

let op: TestOP;
let upstream: Upstream;
let graph: Recorder;
let evil: Recorder;
let g: OidcGateway;

const KC_SECRET = 'kc-client-secret-0123456789abcdef';
const ENTRA_SECRET = 'entra-client-secret-0123456789abcdef';
const NONE_SECRET = 'none-client-secret-0123456789abcdef';
const GRAPH_GROUPS = ['0f1e2d3c-0000-4000-8000-000000000001', '0f1e2d3c-0000-4000-8000-000000000002'];

const route = (name: string, provider: string, authorize: string) => `  - name: ${name}
    match: { path: /${name} }
    upstream: { url: ${upstream.url} }
    authenticate: [${provider}]
    authorize: ${authorize}
`;

beforeAll(async () => {
  const ca = await createCA('oidc claims CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  graph = await startRecorder();
  evil = await startRecorder();
  g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-corp',
    providers: [
      `  kc: { type: oidc, issuer: "${op.issuer}", client_id: gw-kc, client_secret: "${KC_SECRET}", timeout: 5s,`,
      `        claims: { groups: [realm_access.roles, resource_access.gw-kc.roles, { path: [resource_access, my.client, roles] }, groups] } }`,
      `  entra: { type: oidc, issuer: "${op.issuer}", client_id: gw-entra, client_secret: "${ENTRA_SECRET}", timeout: 5s,`,
      `           groups_overage: { endpoint: "${graph.url}/v1.0", timeout: 1s } }`,
      `  entra-none: { type: oidc, issuer: "${op.issuer}", client_id: gw-none, client_secret: "${NONE_SECRET}", timeout: 5s }`,
    ].join('\n'),
    routes:
      route('kc-admin', 'kc', '{ allow: [{ claims: { realm_access.roles: { contains: admin } } }] }') +
      route('kc-any', 'kc', '{ allow: [{ authenticated: true }] }') +
      route('entra', 'entra', `{ allow: [{ groups: ["${GRAPH_GROUPS[1]}"] }] }`) +
      route('none', 'entra-none', '{ allow: [{ authenticated: true }] }'),
  });
  await op.addClient({ client_id: 'gw-kc', client_secret: KC_SECRET, origin: g.origin });
  await op.addClient({ client_id: 'gw-entra', client_secret: ENTRA_SECRET, origin: g.origin });
  await op.addClient({ client_id: 'gw-none', client_secret: NONE_SECRET, origin: g.origin });
}, 30_000);

afterAll(async () => {
  await g?.close();
  await upstream?.close();
  await graph?.close();
  await evil?.close();
  await op?.close();
});

beforeEach(() => {
  graph.calls.length = 0;
  evil.calls.length = 0;
  graph.mode = { value: GRAPH_GROUPS };
});

const overage = (claims: Record<string, unknown>) => {
  const { groups: _dropped, ...rest } = claims;
  return { ...rest, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: `${evil.url}/v1.0/users/x/getMemberObjects` } } };
};

/** Logs in through `path` with the ID token's claims rewritten by `change`; the callback's answer. */
async function login(path: string, account: string, change: (c: Record<string, unknown>) => Record<string, unknown>) {
  const jar = new CookieJar();
  const idp = new CookieJar();
  const start = await g.send(path, { jar, headers: HTML });
  expect(start.status).toBe(302);
  const { callback } = await loginAtProvider(op, start.location as string, idp, { account });
  op.tamperNextIdToken = (c) => change(c as Record<string, unknown>) as never;
  const cb = await g.send(callback.slice(g.origin.length), { jar, headers: HTML });
  return { jar, cb };
}

/**
 * The callback is a browser navigation: a refusal is a page for people. Its request id leads to the decision
 * record's code; the page says what went wrong (the detail).
 */
async function refusedPage(r: Reply): Promise<{ code: unknown; text: string }> {
  expect(String(r.headers['content-type'])).toMatch(/^text\/html/);
  const id = r.headers['x-request-id'] as string;
  expect(r.text).toContain(id);
  const record = await waitFor(() => g.gw.logs.find((l) => l.msg === 'decision' && l.request_id === id), { what: `the decision record of ${id}` });
  return { code: record.code, text: r.text };
}

const decisionsFor = (route: string) => g.gw.logs.filter((l) => l.audit === true && l.msg === 'decision' && l.route === route);

describe('Keycloak-shaped tokens', () => {
  const keycloak = (c: Record<string, unknown>) => ({
    ...c,
    realm_access: { roles: ['offline_access', 'admin'] },
    resource_access: { 'gw-kc': { roles: ['admin', 'gw-reader'] }, 'my.client': { roles: ['writer'] }, account: { roles: ['manage-account'] } },
  });

  it('realm roles, client roles and groups merged in order, de-duplicated: the exact X-ZT-Groups upstream', async () => {
    const { jar, cb } = await login('/kc-any/x', 'bob', keycloak);
    expect(cb.status, cb.text).toBe(302);
    const before = upstream.received.length;
    const r = await g.send('/kc-any/x', { jar, headers: HTML });
    expect(r.status).toBe(200);
    const got = upstream.received.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0]?.headers['x-zt-user']).toBe('bob');
    // bob's groups claim is ["sales"]; the account client's roles are not a configured source.
    expect(got[0]?.headers['x-zt-groups']).toBe('offline_access,admin,gw-reader,writer,sales');
  });

  it('a rule on claims.realm_access.roles: allowed with the role, 403 claims-unauthorized without it', async () => {
    const yes = await login('/kc-admin/x', 'bob', keycloak);
    expect(yes.cb.status, yes.cb.text).toBe(302);
    expect((await g.send('/kc-admin/x', { jar: yes.jar, headers: HTML })).status).toBe(200);

    const no = await login('/kc-admin/x', 'carol', (c) => ({ ...keycloak(c), realm_access: { roles: ['user'] } }));
    expect(no.cb.status, no.cb.text).toBe(302);
    const before = upstream.received.length;
    const r = await g.send('/kc-admin/x', { jar: no.jar, headers: { accept: 'application/json' } });
    expect(r.status).toBe(403);
    expect(upstream.received.length).toBe(before);
    expect(decisionsFor('kc-admin').at(-1)).toMatchObject({ decision: 'deny', reasons: [{ reason: 'claims-unauthorized' }] });
  });

  it('hostile claim values: objects, numbers, nested arrays and prototype-shaped keys never become groups', async () => {
    const { jar, cb } = await login('/kc-any/x', 'mallory', (c) => ({
      ...c,
      groups: [{ toString: 'admin' }, 7, ['admin'], null, 'ok'],
      realm_access: JSON.parse('{"__proto__": {"roles": ["admin"]}, "roles": {"0": "admin", "length": 1}}'),
      resource_access: { 'gw-kc': 'admin-as-string' },
    }));
    expect(cb.status, cb.text).toBe(302);
    const before = upstream.received.length;
    expect((await g.send('/kc-any/x', { jar, headers: HTML })).status).toBe(200);
    // A string where an array was expected is one group (the single-string form), everything else is ignored.
    expect(upstream.received.slice(before)[0]?.headers['x-zt-groups']).toBe('ok');
    expect((await g.send('/kc-admin/x', { jar, headers: { accept: 'application/json' } })).status).toBe(403);
  });
});

describe('Entra ID group overage', () => {
  it('groups_overage: the groups come from the configured Graph endpoint with the access token; the token’s endpoint gets nothing', async () => {
    const { jar, cb } = await login('/entra/x', 'alice', overage);
    expect(cb.status, cb.text).toBe(302);
    expect(graph.calls).toHaveLength(1);
    const call = graph.calls[0] as Recorded;
    expect(call.method).toBe('POST');
    expect(call.url).toBe('/v1.0/me/getMemberGroups');
    expect(JSON.parse(call.body)).toEqual({ securityEnabledOnly: false });
    expect(call.authorization).toMatch(/^Bearer [A-Za-z0-9._~+/-]+=*$/);
    expect(evil.calls).toEqual([]);

    const before = upstream.received.length;
    for (let i = 0; i < 3; i++) expect((await g.send('/entra/x', { jar, headers: HTML })).status).toBe(200);
    const got = upstream.received.slice(before);
    expect(got.map((x) => x.headers['x-zt-groups'])).toEqual(Array(3).fill(GRAPH_GROUPS.join(',')));
    // Once per session: the requests after the login never call Graph again.
    expect(graph.calls).toHaveLength(1);
    expect(evil.calls).toEqual([]);
  });

  it('the access token Graph got is the one the IdP issued to this login (not the ID token)', async () => {
    await login('/entra/x', 'carol', overage);
    const token = (graph.calls[0]?.authorization ?? '').slice('Bearer '.length);
    // oidc-provider issues opaque access tokens: never a JWT (three dot-separated parts) like the ID token.
    expect(token.split('.')).toHaveLength(1);
    // The provider knows it: issued to this client for this user.
    const issued = await op.provider.AccessToken.find(token);
    expect(issued?.accountId).toBe('carol');
    expect(issued?.clientId).toBe('gw-entra');
  });

  it('Graph refuses the token (401): the login is refused with reason groups-overage, no session', async () => {
    graph.mode = 401;
    const { jar, cb } = await login('/entra/x', 'alice', overage);
    expect(cb.status).toBe(403);
    const page = await refusedPage(cb);
    expect(page.code).toBe('GW_ERR_FORBIDDEN');
    expect(page.text).toContain('groups-overage');
    expect(cb.setCookie.some((c) => c.startsWith('__Host-zt='))).toBe(false);
    expect(evil.calls).toEqual([]);
    const before = upstream.received.length;
    expect((await g.send('/entra/x', { jar, headers: { accept: 'application/json' } })).status).toBe(401);
    expect(upstream.received.length).toBe(before);
  });

  it('Graph hangs: the login ends at the configured timeout (503), never waits on', async () => {
    graph.mode = 'hang';
    const t0 = Date.now();
    const { cb } = await login('/entra/x', 'alice', overage);
    const ms = Date.now() - t0;
    expect(cb.status).toBe(503);
    expect((await refusedPage(cb)).code).toBe('GW_ERR_DEPENDENCY_UNAVAILABLE');
    expect(ms).toBeLessThan(4_000);
    expect(evil.calls).toEqual([]);
  });

  it('Graph answers too many groups or no list: refused, never silently cut', async () => {
    graph.mode = { value: Array.from({ length: 1001 }, (_, i) => `g-${i}`) };
    expect((await login('/entra/x', 'alice', overage)).cb.status).toBe(403);
    graph.mode = { value: 'not-a-list' };
    expect((await login('/entra/x', 'alice', overage)).cb.status).toBe(403);
    // An answer past the 1 MB cap (1000 groups of 1100 characters) is cut off while read, and refused.
    graph.mode = { value: Array.from({ length: 1000 }, (_, i) => `g-${i}-`.padEnd(1100, 'x')) };
    const huge = (await login('/entra/x', 'alice', overage)).cb;
    expect(huge.status).toBe(403);
    expect((await refusedPage(huge)).text).toContain('groups-overage');
  });

  it('without groups_overage: the overage login is refused with reason groups-overage; nothing is called', async () => {
    const { cb } = await login('/none/x', 'alice', overage);
    expect(cb.status).toBe(403);
    const page = await refusedPage(cb);
    expect(page.code).toBe('GW_ERR_FORBIDDEN');
    expect(page.text).toContain('groups-overage');
    expect(page.text).toMatch(/groups_overage/);
    expect(graph.calls).toEqual([]);
    expect(evil.calls).toEqual([]);
  });

  it('without an overage the provider with groups_overage never calls Graph', async () => {
    const { jar, cb } = await login('/entra/x', 'alice', (c) => ({ ...c, groups: [GRAPH_GROUPS[1]] }));
    expect(cb.status, cb.text).toBe(302);
    expect((await g.send('/entra/x', { jar, headers: HTML })).status).toBe(200);
    expect(graph.calls).toEqual([]);
  });
});

describe('JWT bearer callers', () => {
  let idp: TestIdp;
  let gw: TestGateway;
  let up: Upstream;
  let evil2: Recorder;

  beforeAll(async () => {
    idp = await startIdp();
    up = await startUpstream();
    evil2 = await startRecorder();
    gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
log: { level: warn, access: false }
identity_providers:
  kc:
    type: jwt
    issuer: "${idp.issuer}"
    audiences: [gw]
    claims:
      subject: [oid, sub]
      email: { path: [profile, mail] }
      groups: [realm_access.roles, resource_access.gw.roles, { path: [resource_access, my.client, roles] }, "https://example.com/groups", groups]
  plain: { type: jwt, issuer: "${idp.issuer}", audiences: [plain], claims: { groups: roles } }
routes:
  - name: plain
    match: { path: /plain }
    upstream: { url: ${up.url} }
    authenticate: [plain]
    authorize: { allow: [{ authenticated: true }] }
  - name: admin
    match: { path: /admin }
    upstream: { url: ${up.url} }
    authenticate: [kc]
    authorize: { allow: [{ claims: { realm_access.roles: { contains: admin } } }] }
  - name: app
    match: { path: / }
    upstream: { url: ${up.url} }
    authenticate: [kc]
    authorize: { allow: [{ authenticated: true }] }
`);
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
    await idp?.close();
    await evil2?.close();
  });

  async function call(path: string, token: string) {
    const before = up.received.length;
    const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.body.text();
    return { status: res.statusCode, text, forwarded: up.received.slice(before) };
  }

  it('paths, { path } with dots, namespaced Auth0-style names, merged and de-duplicated: exact X-ZT-Groups', async () => {
    const token = await idp.sign({
      oid: 'oid-42',
      profile: { mail: 'kc@corp.example' },
      email_verified: true,
      realm_access: { roles: ['admin', 'eng'] },
      resource_access: { gw: { roles: ['eng', 'gw-writer'] }, 'my.client': { roles: ['dotted'] } },
      'https://example.com/groups': ['auth0-admins', 'admin'],
      groups: ['/top'],
    });
    const r = await call('/app', token);
    expect(r.status, r.text).toBe(200);
    expect(r.forwarded).toHaveLength(1);
    expect(r.forwarded[0]?.headers['x-zt-user']).toBe('oid-42');
    expect(r.forwarded[0]?.headers['x-zt-email']).toBe('kc@corp.example');
    expect(r.forwarded[0]?.headers['x-zt-groups']).toBe('admin,eng,gw-writer,dotted,auth0-admins,/top');
    expect((await call('/admin', token)).status).toBe(200);
  });

  it('the single-string form keeps working', async () => {
    const r = await call('/plain', await idp.sign({ roles: ['r1', 'r2', 'r1'] }, { aud: 'plain' }));
    expect(r.status, r.text).toBe(200);
    expect(r.forwarded[0]?.headers['x-zt-groups']).toBe('r1,r2');
    expect(r.forwarded[0]?.headers['x-zt-user']).toBe('alice');
  });

  it('claims.realm_access.roles without admin: 403, nothing forwarded', async () => {
    const r = await call('/admin', await idp.sign({ realm_access: { roles: ['eng'] } }));
    expect(r.status).toBe(403);
    expect(r.forwarded).toEqual([]);
  });

  it('an overage token is always denied with reason groups-overage; its claim source is never called', async () => {
    const token = await idp.sign({
      _claim_names: { groups: 'src1' },
      _claim_sources: { src1: { endpoint: `${evil2.url}/v1.0/users/alice/getMemberObjects` } },
    });
    const r = await call('/app', token);
    expect(r.status).toBe(403);
    expect(r.forwarded).toEqual([]);
    expect(evil2.calls).toEqual([]);
    const d = gw.logs.filter((l) => l.audit === true && l.msg === 'decision' && l.route === 'app').at(-1);
    expect(d).toMatchObject({ decision: 'deny', reasons: [{ rule: '-', reason: 'groups-overage' }] });
  });

  it('more than 1000 groups: 401, never a truncated list', async () => {
    // Short names, so the token stays under the 8 KiB bearer limit and the group cap is what refuses it.
    const names = (n: number) => Array.from({ length: n }, (_, i) => i.toString(36));
    const r = await call('/app', await idp.sign({ groups: names(1001) }));
    expect(r.status).toBe(401);
    expect(JSON.parse(r.text).detail).toBe('token carries more than 1000 groups');
    expect(r.forwarded).toEqual([]);
    const ok = await call('/app', await idp.sign({ groups: names(1000) }));
    expect(ok.status, ok.text).toBe(200);
    expect(String(ok.forwarded[0]?.headers['x-zt-groups']).split(',')).toHaveLength(1000);
  });

  it('prototype-shaped claims never become groups or subjects', async () => {
    const r = await call('/app', await idp.sign(JSON.parse('{"oid": {"toString": "x"}, "realm_access": {"__proto__": {"roles": ["admin"]}}, "groups": "solo"}')));
    expect(r.status, r.text).toBe(200);
    expect(r.forwarded[0]?.headers['x-zt-user']).toBe('alice');
    expect(r.forwarded[0]?.headers['x-zt-groups']).toBe('solo');
    expect((await call('/admin', await idp.sign(JSON.parse('{"realm_access": {"__proto__": {"roles": ["admin"]}}}')))).status).toBe(403);
  });
});
