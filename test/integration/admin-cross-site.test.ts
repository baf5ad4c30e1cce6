// The admin API answers nothing a web page can send (issue 16): a browser that holds the admin client
// certificate (or an admin page's token) must not let any site suspend subjects with a form post. Refused: any
// Origin, a Sec-Fetch-Site other than none (403 GW_ERR_CROSS_SITE); a body that is not application/json (415).
// Both auth modes; the state is unchanged; the CLI (no Origin, JSON bodies) keeps working.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { adminCommand } from '../../src/cli/admin.ts';
import { ADMIN_TOKEN, startAdminMtlsGateway, type AdminMtlsGateway } from '../helpers/access.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let mtls: AdminMtlsGateway;
let gw: TestGateway;
let admin: { cert: string; key: string };
const agent = (cert?: { cert: string; key: string }): Agent => mtls.agent(cert);

beforeAll(async () => {
  upstream = await startUpstream();
  mtls = await startAdminMtlsGateway(upstream.url);
  ({ gw, admin } = mtls);
});

afterAll(async () => {
  await mtls?.close();
  await upstream?.close();
});

const modes = () =>
  [
    ['token', agent(), { authorization: `Bearer ${ADMIN_TOKEN}` }],
    ['mTLS', agent(admin), {}],
  ] as const;

async function call(path: string, dispatcher: Agent, headers: Record<string, string>, opts: { method?: 'POST' | 'DELETE' | 'GET'; body?: string } = {}) {
  const res = await request(`${gw.gateway.adminUrl}${path}`, { method: opts.method ?? 'POST', dispatcher, headers, ...(opts.body !== undefined ? { body: opts.body } : {}) });
  const text = await res.body.text();
  return { status: res.statusCode, code: (JSON.parse(text || '{}') as { code?: string }).code };
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('the admin API refuses what a web page can send', () => {
  it('the cross-site form post (Origin https://evil.example, urlencoded) is refused in both auth modes; alice is NOT suspended', async () => {
    for (const [mode, dispatcher, auth] of modes()) {
      for (const action of ['suspend', 'revoke-sessions']) {
        const r = await call(`/admin/v1/subjects/alice/${action}`, dispatcher, { ...auth, ...FORM, origin: 'https://evil.example' }, { body: 'reason=pwned' });
        expect({ mode, action, ...r }).toEqual({ mode, action, status: 403, code: 'GW_ERR_CROSS_SITE' });
      }
    }
    expect(gw.gateway.runtime.access.suspension('alice')).toBeUndefined();
    expect(gw.gateway.runtime.access.list('sessions').has('alice')).toBe(false);
    // Audited as a refused admin action, with who presented the credentials.
    const rec = gw.logs.find((l) => l.audit === true && l.action === 'suspend' && l.code === 'GW_ERR_CROSS_SITE');
    expect(rec).toMatchObject({ status: 403 });
  });

  it('any Origin (even the admin listener\'s own), and Sec-Fetch-Site other than none, are refused; none passes', async () => {
    for (const [mode, dispatcher, auth] of modes()) {
      const json = { ...auth, 'content-type': 'application/json' };
      for (const extra of [{ origin: gw.gateway.adminUrl as string }, { origin: 'null' }, { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'same-site' }, { 'sec-fetch-site': 'cross-site' }]) {
        const r = await call('/admin/v1/subjects/bob/suspend', dispatcher, { ...json, ...extra }, { body: '{}' });
        expect({ mode, extra, ...r }).toEqual({ mode, extra, status: 403, code: 'GW_ERR_CROSS_SITE' });
      }
      // Even a read: a page must not learn the state either.
      expect((await call('/admin/v1/state', dispatcher, { ...auth, origin: 'https://evil.example' }, { method: 'GET' })).status).toBe(403);
    }
    expect(gw.gateway.runtime.access.suspension('bob')).toBeUndefined();
    const [, dispatcher, auth] = modes()[0];
    const typed = await call('/admin/v1/subjects/bob/suspend', dispatcher, { ...auth, 'sec-fetch-site': 'none', 'content-type': 'application/json' }, { body: '{}' });
    expect(typed.status).toBe(200);
    expect((await call('/admin/v1/subjects/bob/suspend', dispatcher, auth, { method: 'DELETE' })).status).toBe(200);
  });

  it('a body must be application/json (415 otherwise, also text/plain and a missing type); no body needs no type', async () => {
    for (const [mode, dispatcher, auth] of modes()) {
      for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', undefined]) {
        const headers: Record<string, string> = { ...auth, ...(type ? { 'content-type': type } : {}) };
        const r = await call('/admin/v1/subjects/carol/suspend', dispatcher, headers, { body: '{"reason":"x"}' });
        expect({ mode, type, ...r }).toEqual({ mode, type, status: 415, code: 'GW_ERR_UNSUPPORTED_MEDIA_TYPE' });
      }
      expect(gw.gateway.runtime.access.suspension('carol')).toBeUndefined();
      const json = await call('/admin/v1/subjects/carol/suspend', dispatcher, { ...auth, 'content-type': 'application/json; charset=utf-8' }, { body: '{"reason":"x"}' });
      expect(json.status).toBe(200);
      const bare = await call('/admin/v1/subjects/carol/suspend', dispatcher, auth, { method: 'DELETE' });
      expect(bare.status).toBe(200);
    }
  });

  it('the CLI keeps working in both modes (JSON body with --reason, no body without)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztgw-admin-xsite-'));
    writeFileSync(join(dir, 'ca.pem'), mtls.serverCa);
    writeFileSync(join(dir, 'client.pem'), admin.cert);
    writeFileSync(join(dir, 'client.key'), admin.key);
    const out: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(`ERR ${s}`) };
    const url = gw.gateway.adminUrl as string;
    const tls = ['--ca', join(dir, 'ca.pem')];
    expect(await adminCommand('admin', ['suspend', 'dave', '--reason', 'SEC-1', '--admin-url', url, '--token', ADMIN_TOKEN, ...tls], io, {})).toBe(0);
    expect(gw.gateway.runtime.access.suspension('dave')).toBeDefined();
    expect(await adminCommand('admin', ['unsuspend', 'dave', '--admin-url', url, '--cert', join(dir, 'client.pem'), '--key', join(dir, 'client.key'), ...tls], io, {})).toBe(0);
    expect(gw.gateway.runtime.access.suspension('dave')).toBeUndefined();
    expect(await adminCommand('admin', ['revoke-sessions', 'dave', '--admin-url', url, '--cert', join(dir, 'client.pem'), '--key', join(dir, 'client.key'), ...tls], io, {})).toBe(0);
    expect(await adminCommand('admin', ['state', '--admin-url', url, '--token', ADMIN_TOKEN, ...tls], io, {})).toBe(0);
    expect(out.filter((l) => l.startsWith('ERR'))).toEqual([]);
  });
});
