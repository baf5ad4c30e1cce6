// `zt-gateway admin ...` and `zt-gateway grants ...` as an operator runs them (node bin/zt-gateway.js on the
// built dist/) against a running gateway's admin API; their effect is checked on real requests.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessConfig, ADMIN_TOKEN, call, DEVICES_YAML, post, token } from '../helpers/access.ts';
import { bin, ensureBuilt, root } from '../helpers/build.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let gw: TestGateway;
const SLOW = 120_000; // each CLI call is a fresh Node process; on a busy 2-core machine that takes seconds

/** Asynchronous on purpose: the gateway under test runs in this process and must keep answering. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, timeout: 30_000, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
const url = () => ['--admin-url', gw.gateway.adminUrl as string];
const withToken = () => [...url(), '--token', ADMIN_TOKEN];

beforeAll(async () => {
  ensureBuilt();
  upstream = await startUpstream();
  gw = await startGateway(accessConfig({ upstream: upstream.url, devices: true }), { files: { 'devices.yaml': DEVICES_YAML } });
}, 180_000);

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('zt-gateway admin', () => {
  it('suspend / state / unsuspend change what the gateway answers', async () => {
    const t = await token('alice');
    const s = await cli(['admin', 'suspend', 'alice', '--reason', 'SEC-9', ...withToken()]);
    expect(s).toMatchObject({ code: 0 });
    expect(JSON.parse(s.stdout)).toEqual({ subject: 'alice', suspended: true });
    expect((await call(gw, upstream, '/app/x', t)).body.code).toBe('GW_ERR_SUSPENDED');
    const state = await cli(['admin', 'state', ...url()], { ZT_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(state.code).toBe(0);
    expect(JSON.parse(state.stdout).suspended).toEqual([{ subject: 'alice', at: expect.any(String), by: 'token', reason: 'SEC-9' }]);
    expect((await cli(['admin', 'unsuspend', 'alice', ...withToken()])).code).toBe(0);
    expect((await call(gw, upstream, '/app/x', t)).status).toBe(200);
  }, SLOW);

  it('revoke-token, revoke-device and revoke-sessions', async () => {
    const t = await token('bob', { jti: 'cli-jti' });
    expect((await cli(['admin', 'revoke-token', 'cli-jti', ...withToken()])).code).toBe(0);
    expect((await call(gw, upstream, '/app/x', t)).status).toBe(401);
    expect((await cli(['admin', 'revoke-device', 'laptop-2', ...withToken()])).code).toBe(0);
    expect((await call(gw, upstream, '/app/x', await token('bob'), { 'x-device-id': 'laptop-2' })).status).toBe(403);
    const rs = await cli(['admin', 'revoke-sessions', 'bob', ...withToken()]);
    expect(JSON.parse(rs.stdout)).toMatchObject({ subject: 'bob', sessions_revoked: true });
  }, SLOW);

  it('a subject with reserved characters is encoded for the URL', async () => {
    expect((await cli(['admin', 'suspend', 'auth0|x/y z', ...withToken()])).code).toBe(1); // space: refused by the API (400)
    expect((await cli(['admin', 'suspend', 'auth0|x/y', ...withToken()])).code).toBe(0);
    expect((await call(gw, upstream, '/app/x', await token('auth0|x/y'))).status).toBe(403);
  }, SLOW);

  it('wrong or missing token: exit 1 with the problem code; bad usage: exit 2; unreachable: exit 1', async () => {
    const wrong = await cli(['admin', 'suspend', 'carol', ...url(), '--token', 'nope']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('401 GW_ERR_UNAUTHENTICATED');
    expect((await cli(['admin', 'state', ...url()])).code).toBe(1);
    expect(gw.gateway.runtime.access.suspension('carol')).toBeUndefined();
    const usage = await Promise.all([
      cli(['admin', 'suspend', ...withToken()]),
      cli(['admin', 'explode', 'x', ...withToken()]),
      cli(['admin', 'state', 'extra', ...withToken()]),
      cli(['admin', 'suspend', 'x', '--bogus', ...withToken()]),
    ]);
    expect(usage.map((u) => u.code)).toEqual([2, 2, 2, 2]);
    const down = await cli(['admin', 'state', '--admin-url', 'http://127.0.0.1:1', '--token', ADMIN_TOKEN]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach');
  }, SLOW);
});

describe('zt-gateway grants', () => {
  it('list / approve (self-approval refused) / revoke', async () => {
    const t = await token('dora');
    const r = await post(gw, '/.zt/grants', t, { grant: 'prod-db-admin', justification: 'INC-1', duration: '15m' });
    const id = r.body.id as string;
    const list = await cli(['grants', 'list', ...withToken()]);
    expect(JSON.parse(list.stdout).grants).toContainEqual(expect.objectContaining({ id, state: 'pending', subject: 'dora' }));
    const self = await cli(['grants', 'approve', id, '--approver', 'dora', '--approver-groups', 'dba', ...withToken()]);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('403 GW_ERR_FORBIDDEN');
    expect((await cli(['grants', 'approve', id, ...withToken()])).code).toBe(2); // the approver must be named
    const ok = await cli(['grants', 'approve', id, '--approver', 'erik', '--approver-groups', 'eng,dba', ...withToken()]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ id, state: 'active', approved_by: 'erik' });
    expect((await call(gw, upstream, '/db/x', t)).status).toBe(200);
    expect((await cli(['grants', 'revoke', id, '--reason', 'done', ...withToken()])).code).toBe(0);
    expect((await call(gw, upstream, '/db/x', t)).status).toBe(403);
  }, SLOW);
});
