// The admin API over HTTPS with client certificates (admin.tls.client_ca): a certificate from that CA is an
// admin; no certificate, or one from another CA, is not; a token still works next to mTLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { createCA } from '../../tools/pki.ts';
import { ADMIN_TOKEN, startAdminMtlsGateway, type AdminMtlsGateway, call, token } from '../helpers/access.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let mtls: AdminMtlsGateway;
let gw: TestGateway;
let admin: { cert: string; key: string };
let stranger: { cert: string; key: string };
const agent = (cert?: { cert: string; key: string }): Agent => mtls.agent(cert);

async function suspend(sub: string, dispatcher: Agent, headers: Record<string, string> = {}) {
  const res = await request(`${gw.gateway.adminUrl}/admin/v1/subjects/${sub}/suspend`, { method: 'POST', dispatcher, headers });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  upstream = await startUpstream();
  mtls = await startAdminMtlsGateway(upstream.url);
  ({ gw, admin } = mtls);
  stranger = await (await createCA('some other CA')).issue({ cn: 'ops-laptop', client: true });
});

afterAll(async () => {
  await mtls?.close();
  await upstream?.close();
});

describe('admin API with mTLS', () => {
  it('serves https; a client certificate from admin.tls.client_ca is an admin (audited as mtls:<CN>)', async () => {
    expect(gw.gateway.adminUrl?.startsWith('https://')).toBe(true);
    const r = await suspend('alice', agent(admin));
    expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: { subject: 'alice', suspended: true } });
    expect((await call(gw, upstream, '/app/x', await token('alice'))).status).toBe(403);
    expect(gw.logs.find((l) => l.audit === true && l.action === 'suspend')).toMatchObject({ actor: 'mtls:ops-laptop', subject: 'alice' });
  });

  it('no certificate, or a certificate from another CA: 401', async () => {
    for (const a of [agent(), agent(stranger)]) {
      const r = await suspend('bob', a);
      expect({ status: r.status, code: r.body.code }).toEqual({ status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
    }
    expect(gw.gateway.runtime.access.suspension('bob')).toBeUndefined();
  });

  it('/metrics: a client certificate from admin.tls.client_ca or the token; neither, or another CA: 401 (issue 17)', async () => {
    const scrape = async (dispatcher: Agent, headers: Record<string, string> = {}) => {
      const res = await request(`${gw.gateway.adminUrl}/metrics`, { dispatcher, headers });
      return { status: res.statusCode, text: await res.body.text() };
    };
    for (const a of [agent(), agent(stranger)]) {
      const r = await scrape(a);
      expect(r.status).toBe(401);
      expect(r.text).not.toContain('zt_');
    }
    expect((await scrape(agent(admin))).status).toBe(200);
    const withToken = await scrape(agent(), { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(withToken.status).toBe(200);
    expect(withToken.text).toMatch(/^zt_requests_total/m);
  });

  it('the bearer token still works without a certificate; health probes need neither', async () => {
    expect((await suspend('carol', agent(), { authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(200);
    const health = await request(`${gw.gateway.adminUrl}/healthz`, { dispatcher: agent() });
    expect(health.statusCode).toBe(200);
    await health.body.text();
  });
});
