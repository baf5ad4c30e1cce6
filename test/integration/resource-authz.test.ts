// Resource-level authorization: named path segments and query parameters bound to the verified caller
// (`params: { tenant: claims.tenant_ids }`, `params: { user: subject }`, `query_params`). Every refusal is
// a 403 that the upstream never sees and the audit names the failing parameter; a missing claim denies.
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const SECRET = randomBytes(32).toString('base64url');
const ISSUER = 'https://idp.tenants.test';

function config(up: string): string {
  const upstream = `upstream: { url: ${up}, timeout: 2s, connect_timeout: 1s }`;
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_headers: { assertion: false }
identity_providers:
  corp: { type: jwt, issuer: ${ISSUER}, audiences: [gw], algorithms: [HS256], secret: "\${env:SECRET}" }
routes:
  - name: invoices
    match: { path: "/tenants/{tenant}/invoices/{id}" }
    ${upstream}
    authenticate: [corp]
    authorize:
      allow:
        - { name: tenant-read, params: { tenant: claims.tenant_ids }, http_methods: [GET, HEAD] }
  - name: profiles
    match: { path: "=/users/{user}/profile" }
    ${upstream}
    authenticate: [corp]
    authorize:
      allow:
        - { name: own-profile, params: { user: subject }, http_methods: [GET, PUT] }
        - { name: by-mail, params: { user: email }, http_methods: [GET] }
  - name: reports
    match: { path: /reports }
    ${upstream}
    authenticate: [corp]
    authorize:
      allow:
        - { name: tenant-reports, query_params: { tenant: claims.org.tenant } }
`;
}

let upstream: Upstream;
let gw: TestGateway;
beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(config(upstream.url), { env: { SECRET } });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

function token(sub: string, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience('gw')
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));
}

async function call(path: string, tok: string, method = 'GET') {
  const before = upstream.received.length;
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${tok}` } });
  const text = await res.body.text();
  const id = res.headers['x-request-id'] as string;
  const audit = () => gw.logs.find((l) => l.msg === 'decision' && l.request_id === id);
  await waitFor(() => audit() !== undefined);
  return {
    status: res.statusCode,
    body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {},
    received: upstream.received.slice(before),
    audit: audit() as Record<string, unknown>,
  };
}

type Answer = Awaited<ReturnType<typeof call>>;

function forwarded(a: Answer, url: string) {
  expect(a.status).toBe(200);
  expect(a.received.map((r) => r.url)).toEqual([url]);
  expect(a.audit.decision).toBe('allow');
}

function denied(a: Answer, reason: string, param: string) {
  expect(a.status).toBe(403);
  expect(a.body.code).toBe('GW_ERR_FORBIDDEN');
  expect(a.received).toHaveLength(0);
  expect(a.audit).toMatchObject({ decision: 'deny', status: 403, code: 'GW_ERR_FORBIDDEN' });
  expect(a.audit.reasons).toContainEqual(expect.objectContaining({ reason, param }));
}

describe('named path segments bound to claims', () => {
  it('forwards a tenant in the caller\'s tenant list and refuses another tenant', async () => {
    const t = await token('erin', { tenant_ids: ['acme', 'globex'] });
    forwarded(await call('/tenants/acme/invoices/7', t), '/tenants/acme/invoices/7');
    forwarded(await call('/tenants/globex/invoices/9/lines', t), '/tenants/globex/invoices/9/lines');
    denied(await call('/tenants/initech/invoices/7', t), 'param-unauthorized', 'tenant');
  });

  it('accepts a single-string claim, refuses a near miss (case, prefix)', async () => {
    const t = await token('erin', { tenant_ids: 'acme' });
    forwarded(await call('/tenants/acme/invoices/1', t), '/tenants/acme/invoices/1');
    denied(await call('/tenants/ACME/invoices/1', t), 'param-unauthorized', 'tenant');
    denied(await call('/tenants/acme2/invoices/1', t), 'param-unauthorized', 'tenant');
  });

  it('compares %-encoded segments after one decoding, never two', async () => {
    const t = await token('erin', { tenant_ids: ['acme corp', 'a%20b'] });
    forwarded(await call('/tenants/acme%20corp/invoices/1', t), '/tenants/acme%20corp/invoices/1');
    // %2520 decodes once to the literal "%20": that is the claim "a%20b", not "a b"
    forwarded(await call('/tenants/a%2520b/invoices/1', t), '/tenants/a%2520b/invoices/1');
    denied(await call('/tenants/a%20b/invoices/1', t), 'param-unauthorized', 'tenant');
    // unreserved escapes are the same segment: %61cme is acme (normalize decodes it), not in the list
    denied(await call('/tenants/%61cme/invoices/1', t), 'param-unauthorized', 'tenant');
  });

  it('never takes a segment with ;params for the bare value (the forwarded bytes are compared)', async () => {
    const t = await token('erin', { tenant_ids: ['acme'] });
    denied(await call('/tenants/acme;tenant=globex/invoices/7', t), 'param-unauthorized', 'tenant');
    denied(await call('/tenants/acme/invoices;x=1/7', t), 'param-unauthorized', 'tenant');
    // parameters on a segment the rule does not bind (a URL-rewritten session id) are forwarded as sent
    forwarded(await call('/tenants/acme/invoices/7;jsessionid=AB12', t), '/tenants/acme/invoices/7;jsessionid=AB12');
  });

  it('denies, never errors, when the claim is missing or not a string list', async () => {
    denied(await call('/tenants/acme/invoices/1', await token('erin', {})), 'identity-field-missing', 'tenant');
    denied(await call('/tenants/acme/invoices/1', await token('erin', { tenant_ids: { acme: true } })), 'identity-field-missing', 'tenant');
    denied(await call('/tenants/acme/invoices/1', await token('erin', { tenant_ids: [] })), 'param-unauthorized', 'tenant');
  });

  it('does not route an empty or missing segment to the templated route', async () => {
    const t = await token('erin', { tenant_ids: ['acme'] });
    const a = await call('/tenants/acme/invoices', t);
    expect(a.status).toBe(404);
    expect(a.received).toHaveLength(0);
    const b = await call('/tenants/acme/invoices/', t);
    expect(b.status).toBe(404);
  });

  it('combines with http_methods: tenants read, never write', async () => {
    const t = await token('erin', { tenant_ids: ['acme'] });
    const a = await call('/tenants/acme/invoices/1', t, 'DELETE');
    expect(a.status).toBe(403);
    expect(a.received).toHaveLength(0);
  });
});

describe('subject-owned paths', () => {
  it('lets a user read and write only their own profile', async () => {
    const t = await token('alice', {});
    forwarded(await call('/users/alice/profile', t), '/users/alice/profile');
    forwarded(await call('/users/alice/profile', t, 'PUT'), '/users/alice/profile');
    denied(await call('/users/bob/profile', t, 'PUT'), 'param-unauthorized', 'user');
    denied(await call('/users/bob/profile', t), 'param-unauthorized', 'user');
  });

  it('binds email only when it is verified', async () => {
    const verified = await token('u1', { email: 'Bob@Example.com', email_verified: true });
    forwarded(await call('/users/bob@example.com/profile', verified), '/users/bob@example.com/profile');
    const unverified = await token('u1', { email: 'bob@example.com' });
    denied(await call('/users/bob@example.com/profile', unverified), 'identity-field-missing', 'user');
  });
});

describe('query parameters bound to claims', () => {
  it('forwards a matching parameter, refuses a repeated one with a single bad value', async () => {
    const t = await token('erin', { org: { tenant: 'acme' } });
    forwarded(await call('/reports?tenant=acme&year=2026', t), '/reports?tenant=acme&year=2026');
    forwarded(await call('/reports?tenant=acme&tenant=acme', t), '/reports?tenant=acme&tenant=acme');
    denied(await call('/reports?tenant=acme&tenant=globex', t), 'query-param-unauthorized', 'tenant');
    denied(await call('/reports?tenant=globex&tenant=acme', t), 'query-param-unauthorized', 'tenant');
    // the same name percent-encoded is the same parameter
    denied(await call('/reports?tenant=acme&%74enant=globex', t), 'query-param-unauthorized', 'tenant');
  });

  it('denies when the parameter is missing or empty, or the claim is missing', async () => {
    const t = await token('erin', { org: { tenant: 'acme' } });
    denied(await call('/reports', t), 'query-param-missing', 'tenant');
    denied(await call('/reports?tenant=', t), 'query-param-unauthorized', 'tenant');
    denied(await call('/reports?tenant=acme', await token('erin', { org: {} })), 'identity-field-missing', 'tenant');
  });
});
