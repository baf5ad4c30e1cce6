// Just-in-time grants end to end (memory store): request on /.zt/grants, approval through the admin API or
// by an approver's own login, refusals (self-approval, non-approver, duration above max, CSRF-shaped
// requests), expiry by the real clock, revocation; every step in the audit stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { activeGrantCount } from '../../src/state/grants.ts';
import { accessConfig, admin, ADMIN_TOKEN, call, post, token, within } from '../helpers/access.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(accessConfig({ upstream: upstream.url, grantMax: '1h' }));
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

const grantAudits = (event: string) => gw.logs.filter((l) => l.audit === true && l.event === event);
const approveAs = (id: string, subject: string, groups: string[]) => admin(gw, 'POST', `/admin/v1/grants/${id}/approve`, { body: { approver: { subject, groups } } });

async function requestGrant(sub: string, duration = '30m'): Promise<{ id: string; t: string }> {
  const t = await token(sub);
  const r = await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: `INC-42 ${sub} needs the db`, duration });
  expect(r.status).toBe(201);
  return { id: r.body.id as string, t };
}

describe('just-in-time grants', () => {
  it('request → pending (route still 403 grant-required) → approve → active (forwarded) → revoke → 403', async () => {
    const { id, t } = await requestGrant('alice');
    expect(id).toMatch(/^g_[A-Za-z0-9_-]{22}$/);
    const before = await call(gw, upstream, '/db/q', t);
    expect({ status: before.status, code: before.body.code, forwarded: before.forwarded.length }).toEqual({ status: 403, code: 'GW_ERR_FORBIDDEN', forwarded: 0 });
    const reasons = gw.logs.filter((l) => l.audit === true && l.route === 'db').at(-1)?.reasons;
    expect(reasons).toEqual([{ rule: 'allow[0]', reason: 'grant-required' }]);

    const ok = await approveAs(id, 'bob', ['dba']);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ id, state: 'active', subject: 'alice', approved_by: 'bob', duration_s: 1800 });
    expect(Date.parse(ok.body.expires_at as string) - Date.parse(ok.body.approved_at as string)).toBe(1_800_000);
    expect(activeGrantCount(gw.gateway.runtime.access)).toBe(1);
    // The active grant is what the admin listener's zt_grants_active gauge reports.
    const scrape = await request(`${gw.gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(await scrape.body.text()).toMatch(/^zt_grants_active 1$/m);
    const after = await call(gw, upstream, '/db/q', t);
    expect({ status: after.status, forwarded: after.forwarded.length }).toEqual({ status: 200, forwarded: 1 });
    expect(after.forwarded[0]?.headers['x-zt-user']).toBe('alice');
    // The grant is alice's: another subject gets nothing from it.
    expect((await call(gw, upstream, '/db/q', await token('mallory'))).status).toBe(403);

    const again = await approveAs(id, 'bob', ['dba']);
    expect({ status: again.status, code: again.body.code }).toEqual({ status: 400, code: 'GW_ERR_BAD_REQUEST' });

    const rv = await admin(gw, 'POST', `/admin/v1/grants/${id}/revoke`, { body: { reason: 'done early' } });
    expect(rv.body).toMatchObject({ id, state: 'revoked', revoked_by: 'token' });
    expect((await call(gw, upstream, '/db/q', t)).status).toBe(403);
    expect(activeGrantCount(gw.gateway.runtime.access)).toBe(0);

    expect(grantAudits('grant.request').find((l) => l.grant_id === id)).toMatchObject({ subject: 'alice', grant: 'prod-db-admin', justification: 'INC-42 alice needs the db', decision: 'grant' });
    expect(grantAudits('grant.approve').find((l) => l.grant_id === id && l.status === 200)).toMatchObject({ approver: 'bob', action: 'grant-approve' });
    expect(grantAudits('grant.revoke').find((l) => l.grant_id === id)).toMatchObject({ reason: 'done early' });
  });

  it('self-approval is refused (admin API and own login), even when the requester is an approver', async () => {
    const { id, t } = await requestGrant('dora');
    const viaAdmin = await approveAs(id, 'dora', ['dba']);
    expect({ status: viaAdmin.status, code: viaAdmin.body.code }).toEqual({ status: 403, code: 'GW_ERR_FORBIDDEN' });
    expect(viaAdmin.body.detail).toBe('a grant cannot be approved by its requester');
    const self = await post(gw, `/.zt/grants/${id}/approve`, await token('dora', { groups: ['dba'] }), {});
    expect({ status: self.status, code: self.body.code }).toEqual({ status: 403, code: 'GW_ERR_FORBIDDEN' });
    expect((await call(gw, upstream, '/db/q', t)).status).toBe(403);
    expect(gw.gateway.runtime.access.get('grants', id)?.status).toBe('pending');
    // Both refusals are in the audit stream: the admin API's (by action and target) and the login's.
    expect(gw.logs.filter((l) => l.audit === true && l.action === 'grant-approve' && l.target === id).map((l) => [l.status, l.code])).toEqual([[403, 'GW_ERR_FORBIDDEN']]);
    expect(grantAudits('grant.approve').filter((l) => l.grant_id === id).map((l) => [l.status, l.code, l.approver])).toEqual([[403, 'GW_ERR_FORBIDDEN', 'dora']]);
  });

  it('a non-approver is refused; an approver approves with their own login on /.zt/grants/{id}/approve', async () => {
    const { id, t } = await requestGrant('erik');
    const outsider = await approveAs(id, 'bob', ['eng', 'dbadmins']);
    expect({ status: outsider.status, code: outsider.body.code }).toEqual({ status: 403, code: 'GW_ERR_FORBIDDEN' });
    const outsiderLogin = await post(gw, `/.zt/grants/${id}/approve`, await token('bob', { groups: ['eng'] }), {});
    expect({ status: outsiderLogin.status, code: outsiderLogin.body.code }).toEqual({ status: 403, code: 'GW_ERR_FORBIDDEN' });
    expect((await call(gw, upstream, '/db/q', t)).status).toBe(403);
    const ok = await post(gw, `/.zt/grants/${id}/approve`, await token('fay', { groups: ['dba'] }), {});
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ state: 'active', approved_by: 'fay' });
    expect((await call(gw, upstream, '/db/q', t)).status).toBe(200);
  });

  it('refuses a duration above max_duration, zero, or malformed; an unknown grant; a missing justification', async () => {
    const t = await token('gus');
    const bad = [
      { grant: 'prod-db-admin', justification: 'x', duration: '2h' },
      { grant: 'prod-db-admin', justification: 'x', duration: '61m' },
      { grant: 'prod-db-admin', justification: 'x', duration: '0s' },
      { grant: 'prod-db-admin', justification: 'x', duration: '1 h' },
      { grant: 'prod-db-admin', justification: 'x', duration: 3600 },
      { grant: 'prod-db-admin', justification: 'x' },
      { grant: 'prod-db-admin', duration: '1h' },
      { grant: 'prod-db-admin', justification: '', duration: '1h' },
      { grant: 'prod-db-admin', justification: 'line\nbreak', duration: '1h' },
      { grant: 'root', justification: 'x', duration: '1h' },
      { justification: 'x', duration: '1h' },
    ];
    for (const body of bad) {
      const r = await post(gw, '/.zt/grants', t, body);
      expect({ body, status: r.status, code: r.body.code }).toEqual({ body, status: 400, code: 'GW_ERR_BAD_REQUEST' });
    }
    expect([...gw.gateway.runtime.access.list('grants').values()].filter((g) => g.subject === 'gus')).toEqual([]);
    expect((await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: 'x', duration: '1h' })).status).toBe(201);
  });

  it('requires authentication and a JSON body (a cross-site form post cannot file a request)', async () => {
    const none = await post(gw, '/.zt/grants', undefined, { grant: 'prod-db-admin', justification: 'x', duration: '1h' });
    expect({ status: none.status, code: none.body.code }).toEqual({ status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
    const forged = await post(gw, '/.zt/grants', 'not.a.jwt', { grant: 'prod-db-admin', justification: 'x', duration: '1h' });
    expect(forged.status).toBe(401);
    const t = await token('hal');
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
      const res = await request(`${gw.url}/.zt/grants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t}`, 'content-type': type },
        body: JSON.stringify({ grant: 'prod-db-admin', justification: 'x', duration: '1h' }),
      });
      expect({ type, status: res.statusCode, code: ((await res.body.json()) as { code: string }).code }).toEqual({ type, status: 400, code: 'GW_ERR_BAD_REQUEST' });
    }
    const huge = await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: 'x'.repeat(5000), duration: '1h' });
    expect({ status: huge.status, code: huge.body.code }).toEqual({ status: 400, code: 'GW_ERR_BAD_REQUEST' });
    const long = await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: 'x'.repeat(1001), duration: '1h' });
    expect({ status: long.status, code: long.body.code }).toEqual({ status: 400, code: 'GW_ERR_BAD_REQUEST' });
    // GET lists the caller's own requests (JSON for a script): none were filed.
    const get = await request(`${gw.url}/.zt/grants`, { headers: { authorization: `Bearer ${t}` } });
    expect({ status: get.statusCode, body: await get.body.json() }).toEqual({ status: 200, body: { subject: 'hal', requests: [], approvals: [] } });
    expect([...gw.gateway.runtime.access.list('grants').values()].filter((g) => g.subject === 'hal')).toEqual([]);
  });

  it('a suspended subject can neither request nor approve', async () => {
    await admin(gw, 'POST', '/admin/v1/subjects/ivan/suspend');
    const r = await post(gw, '/.zt/grants', await token('ivan', { groups: ['dba'] }), { grant: 'prod-db-admin', justification: 'x', duration: '1h' });
    expect({ status: r.status, code: r.body.code }).toEqual({ status: 403, code: 'GW_ERR_SUSPENDED' });
    const { id } = await requestGrant('judy');
    const a = await post(gw, `/.zt/grants/${id}/approve`, await token('ivan', { groups: ['dba'] }), {});
    expect({ status: a.status, code: a.body.code }).toEqual({ status: 403, code: 'GW_ERR_SUSPENDED' });
    expect(gw.gateway.runtime.access.get('grants', id)?.status).toBe('pending');
  });

  it('unknown grant ids are 404 on both approval paths', async () => {
    const missing = 'g_BBBBBBBBBBBBBBBBBBBBBB';
    expect((await approveAs(missing, 'bob', ['dba'])).status).toBe(404);
    expect((await post(gw, `/.zt/grants/${missing}/approve`, await token('bob', { groups: ['dba'] }), {})).status).toBe(404);
    expect((await post(gw, '/.zt/grants/g_x/approve', await token('bob', { groups: ['dba'] }), {})).status).toBe(400);
  });

  it('an approved grant expires on its own after its duration (real clock), audited as grant.expire', async () => {
    const { id, t } = await requestGrant('kim', '2s');
    expect((await approveAs(id, 'bob', ['dba'])).status).toBe(200);
    expect((await call(gw, upstream, '/db/q', t)).status).toBe(200);
    await within(5000, async () => (await call(gw, upstream, '/db/q', t)).status === 403, 100);
    const listed = await admin(gw, 'GET', '/admin/v1/grants');
    expect((listed.body.grants as Array<{ id: string; state: string }>).find((g) => g.id === id)?.state).toBe('expired');
    await within(2000, async () => grantAudits('grant.expire').some((l) => l.grant_id === id));
    expect(grantAudits('grant.expire').find((l) => l.grant_id === id)).toMatchObject({ subject: 'kim', grant: 'prod-db-admin', decision: 'grant' });
  });
});

describe('open grant requests per caller', () => {
  it('refuses a sixth pending request from one caller (429) while others may still ask', async () => {
    for (let i = 0; i < 5; i++) await requestGrant('flooder');
    const t = await token('flooder');
    const r = await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: 'one more', duration: '10m' });
    expect({ status: r.status, code: r.body.code }).toEqual({ status: 429, code: 'GW_ERR_RATE_LIMITED' });
    const pending = [...gw.gateway.runtime.access.list('grants').values()].filter((g) => g.subject === 'flooder');
    expect(pending).toHaveLength(5);
    await requestGrant('patient'); // another caller is not affected
  });
});

describe('the brute-force lockout covers /.zt/grants', () => {
  let locked: TestGateway;
  beforeAll(async () => {
    locked = await startGateway(accessConfig({ upstream: upstream.url, extra: 'rate_limits: { auth_failures: { limit: 2, window: 1m, block: 1m } }' }));
  });
  afterAll(async () => {
    await locked?.close();
  });

  it('counts invalid tokens sent there, then refuses even a valid one from that address (429), elsewhere too', async () => {
    const from = { 'x-forwarded-for': '203.0.113.77' };
    const body = { grant: 'prod-db-admin', justification: 'INC-1', duration: '10m' };
    for (let i = 0; i < 2; i++) expect((await post(locked, '/.zt/grants', 'not.a.valid-token', body, from)).status).toBe(401);
    const r = await post(locked, '/.zt/grants', await token('alice'), body, from);
    expect({ status: r.status, code: r.body.code }).toEqual({ status: 429, code: 'GW_ERR_RATE_LIMITED' });
    expect((await call(locked, upstream, '/app/x', await token('alice'), from)).status).toBe(429);
    // Another address is not locked out.
    expect((await post(locked, '/.zt/grants', await token('alice'), body, { 'x-forwarded-for': '203.0.113.78' })).status).toBe(201);
  });
});
