// /.zt/grants for people (bearer callers here; the cookie session and Chromium are in
// test/browser/grants-pages.test.ts): GET lists the caller's own requests and, for approvers, the pending ones
// they may decide (JSON for fetch, HTML for navigations); urlencoded forms request, approve and deny, answered
// with a 303 back to the list; deny is audited grant.deny; the JSON API is unchanged for scripts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { accessConfig, call, post, token } from '../helpers/access.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(accessConfig({ upstream: upstream.url, grantMax: '8h' }));
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

const NAV = { accept: 'text/html,*/*;q=0.8', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'document' };

async function form(path: string, bearer: string, fields: Record<string, string>) {
  const res = await request(`${gw.url}${path}`, {
    method: 'POST',
    headers: { ...NAV, authorization: `Bearer ${bearer}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

async function list(bearer: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}/.zt/grants`, { headers: { ...headers, authorization: `Bearer ${bearer}` } });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

const audits = (event: string, id: string) => gw.logs.filter((l) => l.audit === true && l.event === event && l.grant_id === id);

describe('/.zt/grants for people', () => {
  it('a form requests (303 to the list); GET lists it for the requester and, pending, for an approver', async () => {
    const t = await token('una');
    const r = await form('/.zt/grants', t, { grant: 'prod-db-admin', justification: 'INC-7\r\nneeds the db', duration: '1h' });
    expect({ status: r.status, location: r.headers.location, length: r.headers['content-length'] }).toEqual({ status: 303, location: '/.zt/grants', length: '0' });
    const mine = JSON.parse((await list(t)).text) as { subject: string; requests: Array<Record<string, unknown>>; approvals: unknown[] };
    expect(mine.subject).toBe('una');
    expect(mine.approvals).toEqual([]);
    expect(mine.requests).toHaveLength(1);
    expect(mine.requests[0]).toMatchObject({ grant: 'prod-db-admin', state: 'pending', justification: 'INC-7 needs the db', duration_s: 3600, subject: 'una' });
    const id = mine.requests[0]?.id as string;

    const approverToken = await token('vic', { groups: ['dba'] });
    const forApprover = JSON.parse((await list(approverToken)).text) as { requests: unknown[]; approvals: Array<Record<string, unknown>> };
    expect(forApprover.requests).toEqual([]);
    expect(forApprover.approvals.map((g) => g.id)).toContain(id);
    // Someone who approves nothing sees no one else's requests.
    const other = JSON.parse((await list(await token('walt', { groups: ['eng'] }))).text) as { requests: unknown[]; approvals: unknown[] };
    expect(other).toMatchObject({ requests: [], approvals: [] });

    // The HTML list for a navigation: Approve / Deny forms, values escaped, the page's own CSP.
    const page = await list(approverToken, NAV);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.text).toContain(`<form method="post" action="/.zt/grants/${id}/approve"><button type="submit">Approve</button></form>`);
    expect(page.text).toContain(`<form method="post" action="/.zt/grants/${id}/deny">`);
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/);
    expect(page.text).not.toContain('<script');

    const ok = await form(`/.zt/grants/${id}/approve`, approverToken, {});
    expect({ status: ok.status, location: ok.headers.location }).toEqual({ status: 303, location: '/.zt/grants' });
    expect((await call(gw, upstream, '/db/q', t)).status).toBe(200);
    expect(audits('grant.approve', id).map((l) => [l.status, l.approver])).toEqual([[200, 'vic']]);
  });

  it('deny (form and JSON): the request becomes denied, never active, audited grant.deny; a non-approver cannot deny', async () => {
    const t = await token('xena');
    const a = await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: 'first', duration: '30m' });
    const b = await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: 'second', duration: '30m' });
    const idA = a.body.id as string;
    const idB = b.body.id as string;

    const outsider = await post(gw, `/.zt/grants/${idA}/deny`, await token('yann', { groups: ['eng'] }), {});
    expect({ status: outsider.status, code: outsider.body.code }).toEqual({ status: 403, code: 'GW_ERR_FORBIDDEN' });
    const self = await post(gw, `/.zt/grants/${idA}/deny`, await token('xena', { groups: ['dba'] }), {});
    expect(self.status).toBe(403);

    const approver = await token('zoe', { groups: ['dba'] });
    const viaForm = await form(`/.zt/grants/${idA}/deny`, approver, {});
    expect({ status: viaForm.status, location: viaForm.headers.location }).toEqual({ status: 303, location: '/.zt/grants' });
    const viaJson = await post(gw, `/.zt/grants/${idB}/deny`, approver, {});
    expect(viaJson.status).toBe(200);
    expect(viaJson.body).toMatchObject({ id: idB, state: 'denied', denied_by: 'zoe' });
    expect(typeof viaJson.body.denied_at).toBe('string');

    const mine = JSON.parse((await list(t)).text) as { requests: Array<Record<string, unknown>> };
    expect(mine.requests.map((g) => [g.id, g.state]).sort()).toEqual([[idA, 'denied'], [idB, 'denied']].sort());
    expect((await call(gw, upstream, '/db/q', t)).status).toBe(403);
    // A denied request cannot be approved afterwards.
    const late = await post(gw, `/.zt/grants/${idA}/approve`, approver, {});
    expect({ status: late.status, code: late.body.code }).toEqual({ status: 400, code: 'GW_ERR_BAD_REQUEST' });

    expect(audits('grant.deny', idA).map((l) => [l.status, l.code ?? null, l.approver])).toEqual([
      [403, 'GW_ERR_FORBIDDEN', 'yann'],
      [403, 'GW_ERR_FORBIDDEN', 'xena'],
      [200, null, 'zoe'],
    ]);
    expect(audits('grant.deny', idB).map((l) => [l.status, l.approver, l.decision])).toEqual([[200, 'zoe', 'grant']]);
  });

  it('a form error is a page for the person; the same refusal as JSON stays problem+json', async () => {
    const t = await token('abe');
    const bad = await form('/.zt/grants', t, { grant: 'prod-db-admin', justification: 'x', duration: '9h' });
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(bad.text).toContain('&quot;duration&quot; must be more than 0 and at most 28800s');
    const twice = await request(`${gw.url}/.zt/grants`, {
      method: 'POST',
      headers: { ...NAV, authorization: `Bearer ${t}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant=prod-db-admin&grant=other&justification=x&duration=1h',
    });
    expect(twice.statusCode).toBe(400);
    expect(await twice.body.text()).toContain('the form names &quot;grant&quot; twice');
    const json = await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: 'x', duration: '9h' });
    expect(json.headers['content-type']).toBe('application/problem+json');
    expect({ status: json.status, code: json.body.code }).toEqual({ status: 400, code: 'GW_ERR_BAD_REQUEST' });
    expect([...gw.gateway.runtime.access.list('grants').values()].filter((g) => g.subject === 'abe')).toEqual([]);
  });

  it('GET /.zt/grants without credentials: 401 (problem+json for fetch; a page for a navigation when no login can start)', async () => {
    const api = await request(`${gw.url}/.zt/grants`);
    expect(api.statusCode).toBe(401);
    expect(api.headers['content-type']).toBe('application/problem+json');
    await api.body.text();
    const nav = await request(`${gw.url}/.zt/grants`, { headers: NAV });
    expect(nav.statusCode).toBe(401);
    expect(nav.headers['content-type']).toBe('text/html; charset=utf-8');
    await nav.body.text();
  });
});
