// Forward-auth for browser logins against a real OpenID Provider: by default a navigation gets 401 and a
// login address for the proxy's error page (nginx cannot relay a 302 from auth_request); with
// ?login=redirect (Traefik relays the answer) it gets the 302 to the provider with its cookies. Envoy's ext_authz
// HTTP mode (/.zt/ext-authz/…) always answers a navigation with that 302: Envoy relays a denial's status and headers.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { parseMetrics } from '../helpers/metrics.ts';
import { CookieJar, loginAtProvider, send, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
const FORWARDED = {
  'x-forwarded-method': 'GET',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'app.example.com',
  'x-forwarded-uri': '/app/page?a=1&b=%2F',
};

let op: TestOP;
let upstream: Upstream;
let g: OidcGateway;
let authorizationEndpoint: string;

beforeAll(async () => {
  const ca = await createCA('forward-auth login CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost', 'app.example.com'], ips: ['127.0.0.1'] }); // app.example.com: the Host Envoy asks with
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  authorizationEndpoint = ((await send(`${op.issuer}/.well-known/openid-configuration`)).json as { authorization_endpoint: string }).authorization_endpoint;
  g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-forward-auth',
    state: 'trusted_proxies: [127.0.0.1/32]',
    routes: `  - name: admin
    match: { path: /admin }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { acr: mfa }
  - name: app
    match: { path: /app }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`,
  });
});

afterAll(async () => {
  await g?.close();
  await op?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.reset(); // per test: checks read what the upstream received in this test
});

describe('forward-auth browser login', () => {
  it('a navigation without a session: 401 with the login address (default, for nginx error_page)', async () => {
    const r = await g.send('/.zt/verify', { headers: { ...HTML, ...FORWARDED } });
    expect(r.status).toBe(401);
    expect(r.headers['x-zt-login']).toBe(`/.zt/login?provider=corp&return_to=${encodeURIComponent('/app/page?a=1&b=%2F')}`);
    expect(r.headers.location).toBeUndefined();
    expect(r.setCookie).toEqual([]);
    expect(upstream.received).toEqual([]);
  });

  it('with ?login=redirect: the 302 to the provider, with the login cookies, for the proxy to relay', async () => {
    const r = await g.send('/.zt/verify?login=redirect', { headers: { ...HTML, ...FORWARDED } });
    expect(r.status).toBe(302);
    expect(r.location?.startsWith(authorizationEndpoint)).toBe(true);
    // The callback is on the host the browser is on (the checked request's), not the gateway's own.
    expect(new URL(r.location as string).searchParams.get('redirect_uri')).toBe('https://app.example.com/.zt/callback');
    expect(r.setCookie.length).toBeGreaterThan(0);
  });

  it('an API call (no navigation) keeps a plain 401 without a login address', async () => {
    const r = await g.send('/.zt/verify?login=redirect', { headers: { accept: 'application/json', ...FORWARDED } });
    expect(r.status).toBe(401);
    expect(r.headers['x-zt-login']).toBeUndefined();
    expect(r.location).toBeUndefined();
  });
});

describe('forward-auth with a session', () => {
  it('a session passes; a step-up is a 401 naming what is missing, or the 302 with ?login=redirect', async () => {
    // Log in (directly at the gateway) as bob, whose logins never use MFA.
    const jar = new CookieJar();
    const start = await g.send('/app/home', { jar, headers: HTML });
    expect(start.status).toBe(302);
    const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account: 'bob' });
    expect((await g.send(callback.slice(g.origin.length), { jar, headers: HTML })).status).toBe(302);

    const ok = await g.send('/.zt/verify', { jar, headers: { ...HTML, ...FORWARDED } });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-zt-user']).toBeDefined();
    expect(ok.headers['x-zt-auth-method']).toBe('session');

    const admin = { ...FORWARDED, 'x-forwarded-uri': '/admin/panel' };
    const hint = await g.send('/.zt/verify', { jar, headers: { ...HTML, ...admin } });
    expect(hint.status).toBe(401);
    expect(hint.headers['www-authenticate']).toContain('error="insufficient_user_authentication"');
    expect(hint.headers['x-zt-login']).toBeUndefined(); // a plain login would not add the missing acr
    const redirect = await g.send('/.zt/verify?login=redirect', { jar, headers: { ...HTML, ...admin } });
    expect(redirect.status).toBe(302);
    expect(new URL(redirect.location as string).searchParams.get('acr_values')).toBe('mfa');

    const m = parseMetrics((await g.gw.gateway.metrics.scrape()).body);
    expect(m.value('zt_decisions_total', { route: 'admin', decision: 'step_up', reason: 'step-up-required' })).toBe(2);
    expect(m.value('zt_authenticated_requests_total', { method: 'session', mfa: 'false' })).toBe(3);
  });
});

describe('Envoy ext_authz HTTP mode: browser login', () => {
  // Envoy asks with the original Host and method, the path behind the prefix, and the client's headers.
  const ENVOY = { host: 'app.example.com', 'x-forwarded-proto': 'https', 'content-length': '0' };

  it('a navigation without a session: the 302 to the provider with its cookies, which Envoy relays', async () => {
    const r = await g.send('/.zt/ext-authz/app/page?a=1&b=%2F', { headers: { ...HTML, ...ENVOY } });
    expect(r.status).toBe(302);
    expect(r.location?.startsWith(authorizationEndpoint)).toBe(true);
    expect(new URL(r.location as string).searchParams.get('redirect_uri')).toBe('https://app.example.com/.zt/callback');
    expect(r.setCookie.length).toBeGreaterThan(0);
    expect(r.headers['x-zt-user']).toBeUndefined();
    expect(upstream.received).toEqual([]);
  });

  it('an API call keeps a plain 401; a session passes with its identity', async () => {
    const api = await g.send('/.zt/ext-authz/app/data', { headers: { accept: 'application/json', ...ENVOY } });
    expect(api.status).toBe(401);
    expect(api.location).toBeUndefined();
    const jar = new CookieJar();
    const start = await g.send('/app/home', { jar, headers: HTML });
    const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account: 'bob' });
    expect((await g.send(callback.slice(g.origin.length), { jar, headers: HTML })).status).toBe(302);
    const ok = await g.send('/.zt/ext-authz/app/page', { jar, headers: { ...HTML, ...ENVOY } });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-zt-user']).toBeDefined();
    expect(ok.headers['x-zt-auth-method']).toBe('session');
    // Only the gateway's cookies were sent: Cookie is dropped on the way to the app.
    expect(String(ok.headers['x-envoy-auth-headers-to-remove']).split(',')).toContain('cookie');
    expect(ok.headers.cookie).toBeUndefined();
    // With the app's own cookies next to them: Cookie is replaced by the app's alone, never removed.
    const mixed = `theme=dark; ${jar.header(`${g.origin}/app/page`)}; lang=de`;
    const both = await g.send('/.zt/ext-authz/app/page', { cookie: mixed, headers: { ...HTML, ...ENVOY } });
    expect(both.status).toBe(200);
    expect(both.headers.cookie).toBe('theme=dark; lang=de');
    expect(String(both.headers['x-envoy-auth-headers-to-remove']).split(',')).not.toContain('cookie');
    // No gateway cookie at all: the client's Cookie header stands as sent (and no session: 401).
    const appOnly = await g.send('/.zt/ext-authz/app/page', { cookie: 'theme=dark', headers: { accept: 'application/json', ...ENVOY } });
    expect(appOnly.status).toBe(401);
    expect(upstream.received).toEqual([]);
  });
});
