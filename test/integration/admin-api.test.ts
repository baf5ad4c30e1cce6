// The admin API (memory store): authentication of every endpoint, id validation, and each action's effect
// on real requests through the main listener (status, code, and what the upstream actually received).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ADMIN_ROUTES } from '../../src/server/admin-api.ts';
import { accessConfig, admin, ADMIN_TOKEN, call, DEVICES_YAML, token } from '../helpers/access.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let gw: TestGateway;
let off: TestGateway;

const GRANT_ID = 'g_AAAAAAAAAAAAAAAAAAAAAA';
/** Each route with a valid id filled in. */
const concrete = ADMIN_ROUTES.map((r) => ({
  ...r,
  url: r.path.replace('{sub}', 'alice').replace('{jti}', 'jti-1').replace('{id}', r.path.includes('/grants/') ? GRANT_ID : 'laptop-9'),
}));

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(accessConfig({ upstream: upstream.url, devices: true }), { files: { 'devices.yaml': DEVICES_YAML } });
  off = await startGateway(accessConfig({ upstream: upstream.url, tokenHash: null }));
});

afterAll(async () => {
  await gw?.close();
  await off?.close();
  await upstream?.close();
});

const audits = (action: string) => gw.logs.filter((l) => l.audit === true && l.decision === 'admin' && l.action === action);

describe('admin API authentication', () => {
  it.each(concrete)('$method $path: no token → 401, nothing changes', async (r) => {
    const a = await admin(gw, r.method, r.url, { auth: null });
    expect({ status: a.status, code: a.body.code }).toEqual({ status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
    expect(a.headers['www-authenticate']).toBe('Bearer realm="zt-gateway-admin"');
    expect(gw.gateway.runtime.access.suspension('alice')).toBeUndefined();
  });

  it.each(concrete)('$method $path: wrong token → 401', async (r) => {
    for (const auth of [`Bearer ${ADMIN_TOKEN}x`, `Bearer ${ADMIN_TOKEN.slice(0, -1)}`, `Basic ${ADMIN_TOKEN}`, ADMIN_TOKEN, 'Bearer ', `Bearer ${'A'.repeat(5000)}`]) {
      const a = await admin(gw, r.method, r.url, { auth });
      expect({ status: a.status, code: a.body.code }).toEqual({ status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
    }
  });

  it('refuses the hash itself as the token, and two Authorization headers even if one is right', async () => {
    const hash = gw.gateway.runtime.current.compiled.config.admin?.token_hash as string;
    expect((await admin(gw, 'GET', '/admin/v1/state', { auth: `Bearer ${hash}` })).status).toBe(401);
    const res = await request(`${gw.gateway.adminUrl}/admin/v1/state`, {
      headers: ['authorization', `Bearer ${ADMIN_TOKEN}`, 'authorization', 'Bearer nope'],
    });
    await res.body.text();
    expect(res.statusCode).toBe(401);
  });

  it('is off (404 for every route, even with a token) when no token_hash and no mTLS are configured', async () => {
    for (const r of concrete) {
      const a = await admin(off, r.method, r.url);
      expect({ status: a.status, code: a.body.code }).toEqual({ status: 404, code: 'GW_ERR_NO_ROUTE' });
    }
    expect(off.gateway.runtime.access.suspension('alice')).toBeUndefined();
  });

  it('is not served on the main listener', async () => {
    const a = await call(gw, upstream, '/admin/v1/state', undefined, { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect({ status: a.status, code: a.body.code, forwarded: a.forwarded.length }).toEqual({ status: 404, code: 'GW_ERR_NO_ROUTE', forwarded: 0 });
  });

  it('answers unknown paths and methods 404 once authenticated', async () => {
    for (const [m, p] of [['GET', '/admin/v1/subjects/alice/suspend'], ['PUT', '/admin/v1/state'], ['POST', '/admin/v1/nope'], ['POST', '/admin/v2/subjects/a/suspend'], ['POST', '/admin/v1/subjects/a/b/suspend']] as const) {
      const res = await request(`${gw.gateway.adminUrl}${p}`, { method: m, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const body = (await res.body.json()) as { code: string };
      expect({ p, m, status: res.statusCode, code: body.code }).toEqual({ p, m, status: 404, code: 'GW_ERR_NO_ROUTE' });
    }
  });
});

describe('admin API input', () => {
  const badIds: Array<[string, string]> = [
    ['POST', '/admin/v1/subjects/al%20ice/suspend'],
    ['POST', '/admin/v1/subjects/al%0Aice/suspend'],
    ['POST', '/admin/v1/subjects/%00/suspend'],
    ['POST', '/admin/v1/subjects/%ZZ/suspend'],
    ['POST', '/admin/v1/subjects/%C3%A9/suspend'],
    ['DELETE', `/admin/v1/subjects/${'a'.repeat(257)}/suspend`],
    ['POST', '/admin/v1/subjects/a%7Fb/revoke-sessions'],
    ['POST', `/admin/v1/tokens/${'j'.repeat(257)}/revoke`],
    ['POST', '/admin/v1/tokens/j%09ti/revoke'],
    ['POST', '/admin/v1/devices/laptop%2F1/revoke'],
    ['POST', '/admin/v1/devices/lap top/revoke'.replace(' ', '%20')],
    ['POST', '/admin/v1/grants/g_short/approve'],
    ['POST', '/admin/v1/grants/not-a-grant-id-at-all-xx/revoke'],
  ];
  it.each(badIds)('%s %s → 400 problem JSON', async (method, path) => {
    const a = await admin(gw, method as 'POST', path);
    expect({ status: a.status, code: a.body.code }).toEqual({ status: 400, code: 'GW_ERR_BAD_REQUEST' });
    expect(a.headers['content-type']).toBe('application/problem+json');
    expect(gw.gateway.runtime.access.list('suspended').size).toBe(0);
    expect(gw.gateway.runtime.access.list('tokens').size).toBe(0);
  });

  it('refuses a body that is not a JSON object, or too large, or a reason that is not text', async () => {
    const duplicate = '{"reason":"SEC-1","reason":"SEC-2"}'; // JSON.parse would keep the last one silently
    const deep = `${'{"a":'.repeat(70)}1${'}'.repeat(70)}`;
    for (const body of ['{', '[1]', '"x"', duplicate, deep, JSON.stringify({ reason: 'x'.repeat(5000) }), JSON.stringify({ reason: 7 }), JSON.stringify({ reason: 'a\nb' })]) {
      const a = await admin(gw, 'POST', '/admin/v1/subjects/bob/suspend', { body });
      expect({ status: a.status, code: a.body.code }).toEqual({ status: 400, code: 'GW_ERR_BAD_REQUEST' });
    }
    expect(gw.gateway.runtime.access.suspension('bob')).toBeUndefined();
  });
});

describe('admin API actions on real requests', () => {
  it('suspend → 403 GW_ERR_SUSPENDED (nothing forwarded), audited with the reason; unsuspend → forwarded again', async () => {
    const t = await token('carol');
    expect((await call(gw, upstream, '/app/x', t)).status).toBe(200);
    const s = await admin(gw, 'POST', '/admin/v1/subjects/carol/suspend', { body: { reason: 'ticket SEC-1' } });
    expect({ status: s.status, body: s.body }).toEqual({ status: 200, body: { subject: 'carol', suspended: true } });
    const refused = await call(gw, upstream, '/app/x', t);
    expect({ status: refused.status, code: refused.body.code, forwarded: refused.forwarded.length }).toEqual({ status: 403, code: 'GW_ERR_SUSPENDED', forwarded: 0 });
    // A fresh token for the same subject does not help; another subject is unaffected.
    expect((await call(gw, upstream, '/app/x', await token('carol'))).status).toBe(403);
    expect((await call(gw, upstream, '/app/x', await token('dave'))).status).toBe(200);
    // Public routes are not affected.
    expect((await call(gw, upstream, '/pub/x', t)).status).toBe(200);
    expect(audits('suspend').at(-1)).toMatchObject({ subject: 'carol', reason: 'ticket SEC-1', actor: 'token', status: 200 });
    const u = await admin(gw, 'DELETE', '/admin/v1/subjects/carol/suspend');
    expect(u.body).toEqual({ subject: 'carol', suspended: false, was_suspended: true });
    const back = await call(gw, upstream, '/app/x', t);
    expect({ status: back.status, forwarded: back.forwarded.length }).toEqual({ status: 200, forwarded: 1 });
    expect(back.forwarded[0]?.headers['x-zt-user']).toBe('carol');
  });

  it('a suspended subject cannot open a WebSocket either (the upgrade is refused before the upstream)', async () => {
    const t = await token('wendy');
    await admin(gw, 'POST', '/admin/v1/subjects/wendy/suspend');
    const before = upstream.received.length;
    const r = await rawRequest(
      gw.port,
      `GET /app/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${t}\r\n\r\n`,
    );
    expect({ status: r.status, code: (JSON.parse(r.body) as { code: string }).code }).toEqual({ status: 403, code: 'GW_ERR_SUSPENDED' });
    expect(upstream.received.length).toBe(before);
    await admin(gw, 'DELETE', '/admin/v1/subjects/wendy/suspend');
  });

  it('a subject with reserved characters is percent-encoded in the path and matched exactly', async () => {
    const sub = 'auth0|5f/x@corp';
    await admin(gw, 'POST', `/admin/v1/subjects/${encodeURIComponent(sub)}/suspend`);
    expect((await call(gw, upstream, '/app/x', await token(sub))).status).toBe(403);
    expect((await call(gw, upstream, '/app/x', await token('auth0|5f'))).status).toBe(200);
    await admin(gw, 'DELETE', `/admin/v1/subjects/${encodeURIComponent(sub)}/suspend`);
    expect((await call(gw, upstream, '/app/x', await token(sub))).status).toBe(200);
  });

  it('revoke-token → that jti gets 401 invalid_token; the same subject with another token still passes', async () => {
    const revoked = await token('erin', { jti: 'jti-revoke-me' });
    expect((await call(gw, upstream, '/app/x', revoked)).status).toBe(200); // now cached by the JWT provider
    const r = await admin(gw, 'POST', '/admin/v1/tokens/jti-revoke-me/revoke', { body: { reason: 'leaked' } });
    expect(r.body).toEqual({ jti: 'jti-revoke-me', revoked: true });
    const refused = await call(gw, upstream, '/app/x', revoked);
    expect({ status: refused.status, code: refused.body.code, forwarded: refused.forwarded.length }).toEqual({ status: 401, code: 'GW_ERR_UNAUTHENTICATED', forwarded: 0 });
    expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
    // on_state_error: allow does not mean "revocations do not apply".
    expect((await call(gw, upstream, '/open/x', revoked)).status).toBe(401);
    expect((await call(gw, upstream, '/app/x', await token('erin'))).status).toBe(200);
    expect(audits('revoke-token').at(-1)).toMatchObject({ jti: 'jti-revoke-me', reason: 'leaked' });
  });

  it('revoke-device → requests from that device get 403; other devices and the same user elsewhere pass', async () => {
    const t = await token('frank');
    expect((await call(gw, upstream, '/app/x', t, { 'x-device-id': 'laptop-1' })).status).toBe(200);
    expect((await admin(gw, 'POST', '/admin/v1/devices/laptop-1/revoke')).body).toEqual({ device: 'laptop-1', revoked: true });
    const refused = await call(gw, upstream, '/app/x', t, { 'x-device-id': 'laptop-1' });
    expect({ status: refused.status, code: refused.body.code, forwarded: refused.forwarded.length }).toEqual({ status: 403, code: 'GW_ERR_FORBIDDEN', forwarded: 0 });
    expect(refused.body.detail).toBe('this device has been revoked');
    expect((await call(gw, upstream, '/app/x', t, { 'x-device-id': 'laptop-2' })).status).toBe(200);
  });

  it('revoke-sessions is recorded (no OIDC here: no sessions to end) and audited', async () => {
    const r = await admin(gw, 'POST', '/admin/v1/subjects/gina/revoke-sessions');
    expect(r.body).toEqual({ subject: 'gina', sessions_revoked: true, sessions_ended: 0 });
    expect(gw.gateway.runtime.access.list('sessions').has('gina')).toBe(true);
    expect(audits('revoke-sessions').at(-1)).toMatchObject({ subject: 'gina', status: 200 });
  });

  it('GET /admin/v1/state lists everything as JSON', async () => {
    await admin(gw, 'POST', '/admin/v1/subjects/henry/suspend', { body: { reason: 'offboarding' } });
    const s = await admin(gw, 'GET', '/admin/v1/state');
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('application/json');
    expect(s.headers['cache-control']).toBe('no-store');
    expect(s.body.store).toMatchObject({ kind: 'memory', fresh: true });
    expect(s.body.suspended).toContainEqual({ subject: 'henry', at: expect.any(String), by: 'token', reason: 'offboarding' });
    expect(s.body.revoked_tokens).toContainEqual(expect.objectContaining({ jti: 'jti-revoke-me', until: expect.any(String) }));
    expect(s.body.revoked_devices).toContainEqual(expect.objectContaining({ device: 'laptop-1' }));
    expect(s.body.session_revocations).toContainEqual(expect.objectContaining({ subject: 'gina' }));
    expect(s.body.active_grants).toBe(0);
    // The admin token never appears in any log line.
    expect(JSON.stringify(gw.logs)).not.toContain(ADMIN_TOKEN);
  });
});
