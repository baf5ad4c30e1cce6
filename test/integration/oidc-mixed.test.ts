// Routes that mix a browser login with service credentials, and the gateway's own /.zt/ endpoints under
// the pre-auth limit: a real oidc-provider, a real upstream, an API-key provider next to the OIDC one.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

const KEY = 'svc-key-0123456789abcdef0123456789abcdef';
const KEYS_FILE = `keys:\n  - { id: svc, hash: ${createHash('sha256').update(KEY).digest('hex')}, subject: svc-reporting, groups: [svc] }\n`;

let op: TestOP;
let upstream: Upstream;
let g: OidcGateway;

beforeAll(async () => {
  const ca = await createCA('oidc mixed CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-mixed',
    providers: '  keys: { type: api_key, keys_file: keys.yaml }',
    files: { 'keys.yaml': KEYS_FILE },
    extra: 'rate_limits: { pre_auth: { per: ip, limit: 40, window: 1m } }',
    routes: `  - name: admin
    match: { path: /admin }
    upstream: { url: ${upstream.url} }
    authenticate: [corp, keys]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { acr: mfa }
  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url} }
    authenticate: [corp, keys]
    authorize: { allow: [{ authenticated: true }] }
`,
  });
});

afterAll(async () => {
  await g?.close();
  await upstream?.close();
  await op?.close();
});

describe('step-up on a route that also takes service credentials', () => {
  it('an API key (no MFA, no way to log in again) gets 401 insufficient_user_authentication and is never forwarded', async () => {
    const before = upstream.received.length;
    const r = await g.send('/admin/report', { headers: { authorization: `ApiKey ${KEY}` } });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('error="insufficient_user_authentication"');
    expect(r.headers['www-authenticate']).toContain('acr_values="mfa"');
    expect(upstream.received.length).toBe(before);
    const rec = g.gw.logs.find((l) => l.msg === 'decision' && l.path === '/admin/report');
    expect(rec?.decision).toBe('step_up');
    expect(rec?.subject).toBe('svc-reporting');
    expect(rec?.status).toBe(401);
  });

  it('a browser without a session on the step-up route is audited as unauthenticated (a login, not a step-up)', async () => {
    const r = await g.send('/admin/first-visit', { headers: { accept: 'text/html' } });
    expect(r.status).toBe(302);
    const rec = g.gw.logs.find((l) => l.msg === 'decision' && l.path === '/admin/first-visit');
    expect(rec?.decision).toBe('unauthenticated');
  });

  it('the same key is let in on the route without step-up', async () => {
    const r = await g.send('/app/report', { headers: { authorization: `ApiKey ${KEY}` } });
    expect(r.status).toBe(200);
    const rec = upstream.received[upstream.received.length - 1];
    expect(rec?.url).toBe('/app/report');
    expect(rec?.headers['x-zt-user']).toBe('svc-reporting');
  });
});

describe('the pre-auth limit covers /.zt/ endpoints', () => {
  it('after the per-IP budget, /.zt/login, /.zt/callback and /.zt/session answer 429 with Retry-After (no IdP call)', async () => {
    let last = 0;
    for (let i = 0; i < 60 && last !== 429; i++) last = (await g.send('/.zt/session')).status;
    expect(last).toBe(429);
    for (const path of ['/.zt/login', '/.zt/callback?code=x&state=y', '/.zt/session', '/.well-known/zt-gateway/jwks.json']) {
      const r = await g.send(path, { headers: { accept: 'text/html' } });
      expect(r.status, path).toBe(429);
      // A navigation gets the page for people (same status, same Retry-After); a script problem+json.
      expect(r.text).toContain('<h1>Too many requests</h1>');
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
      const api = await g.send(path);
      expect(api.json.code).toBe('GW_ERR_RATE_LIMITED');
      expect(Number(api.headers['retry-after'])).toBeGreaterThan(0);
    }
  });
});
