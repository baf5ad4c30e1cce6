// Risk step-up for browser sessions against a REAL OpenID Provider (oidc-provider on loopback): a session
// that suddenly comes from the other side of the world (X-Forwarded-For through the trusted proxy
// 127.0.0.1/32, real GeoLite2 database) is sent back to the provider for a fresh MFA login; fetch/XHR calls
// get 401 { challenge: "mfa" }; after the MFA login the same request passes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { CookieJar, loginAtProvider, send, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';
import { GEOIP_V4, IP_GB, IP_JP } from '../helpers/geoip.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };

let op: TestOP;
let upstream: Upstream;
let gw: OidcGateway;
let authorizationEndpoint: string;

beforeAll(async () => {
  const ca = await createCA('risk oidc test CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  authorizationEndpoint = ((await send(`${op.issuer}/.well-known/openid-configuration`)).json as { authorization_endpoint: string }).authorization_endpoint;
  gw = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-risk',
    state: `trusted_proxies: [127.0.0.1/32]
risk:
  geoip_db: "${GEOIP_V4}"
  learning: { requests: 1, period: 0s }`,
    routes: `  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { when: { risk_above: 0.5 }, acr: mfa }
`,
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await op?.close();
});

describe('risk step-up for an OIDC browser session', () => {
  it('GB then JP: browser navigation → provider with acr_values=mfa, prompt=login, max_age; API call → 401 challenge; MFA login → passes', async () => {
    const jar = new CookieJar();
    const idp = new CookieJar();
    const fromGB = { ...HTML, 'x-forwarded-for': IP_GB };
    const start = await gw.send('/reports/q3', { jar, headers: fromGB });
    expect(start.status).toBe(302);
    const { callback } = await loginAtProvider(op, start.location as string, idp, { account: 'carol' }); // password only
    const cb = await gw.send(callback.slice(gw.origin.length), { jar, headers: fromGB });
    expect(cb.status).toBe(302);
    for (let i = 0; i < 2; i++) expect((await gw.send('/reports/q3', { jar, headers: fromGB })).status).toBe(200);

    const before = upstream.received.length;
    const fromJP = { ...HTML, 'x-forwarded-for': IP_JP };
    const up = await gw.send('/reports/q3?x=1', { jar, headers: fromJP });
    expect(up.status).toBe(302);
    expect(up.location?.startsWith(authorizationEndpoint)).toBe(true);
    const q = new URL(up.location as string).searchParams;
    expect(q.get('acr_values')).toBe('mfa');
    expect(q.get('prompt')).toBe('login');
    expect(q.get('max_age')).toBe('300');

    const api = await gw.send('/reports/q3', { jar, headers: { accept: 'application/json', 'x-forwarded-for': IP_JP } });
    expect(api.status).toBe(401);
    expect(api.location).toBeUndefined();
    expect(api.json).toMatchObject({ challenge: 'mfa', code: 'GW_ERR_UNAUTHENTICATED' });
    expect(api.headers['www-authenticate']).toContain('error="insufficient_user_authentication"');
    expect(upstream.received.length).toBe(before);

    // A second factor at the provider: the callback returns to the page, and the page now passes from Tokyo.
    const done = await loginAtProvider(op, up.location as string, idp, { account: 'carol', otp: '123456' });
    expect(done.prompted).toBe(true);
    const back = await gw.send(done.callback.slice(gw.origin.length), { jar, headers: fromJP });
    expect(back.status).toBe(302);
    expect(back.location).toBe('/reports/q3?x=1');
    const ok = await gw.send('/reports/q3?x=1', { jar, headers: fromJP });
    expect(ok.status).toBe(200);
    const rec = upstream.received[upstream.received.length - 1];
    expect(rec?.url).toBe('/reports/q3?x=1');
    expect(rec?.headers['x-zt-user']).toBe('carol');

    const audit = gw.gw.logs.filter((l) => l.audit === true && l.route === 'app');
    const challenged = audit.filter((l) => l.decision === 'step_up' && (l.risk as { score: number } | undefined)?.score === 1);
    expect(challenged.length).toBe(2); // the redirect and the 401
    expect((challenged[0]?.risk as { signals: Array<{ name: string }> }).signals.map((s) => s.name).sort()).toEqual(['impossible_travel', 'new_country', 'new_ip']);
  });
});
