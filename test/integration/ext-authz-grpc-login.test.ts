// Envoy ext_authz over gRPC for browsers, against a real OpenID Provider, on a plaintext (h2c) listener that
// trusts Envoy by address: a navigation without a session is denied with the 302 to the provider and its
// cookies (Envoy relays a denial's status, headers and body), a session is allowed with its identity, and the
// gateway's own cookies never go upstream (Cookie rewritten to the app's, or removed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { applyLikeEnvoy, checkClient, type CheckClient, type HeaderOption } from '../helpers/envoy-check.ts';
import { CookieJar, loginAtProvider, send, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };

let op: TestOP;
let upstream: Upstream;
let g: OidcGateway;
let envoy: CheckClient;
let authorizationEndpoint: string;

const named = (opts: HeaderOption[] | undefined, name: string) => (opts ?? []).filter((h) => h.header.key === name);

beforeAll(async () => {
  const ca = await createCA('ext_authz grpc login CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost', 'app.example.com'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  authorizationEndpoint = ((await send(`${op.issuer}/.well-known/openid-configuration`)).json as { authorization_endpoint: string }).authorization_endpoint;
  g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-ext-authz-grpc',
    state: 'trusted_proxies: [127.0.0.1/32]',
    extra: 'ext_authz: { listen: 127.0.0.1:0 }',
    routes: `  - name: app
    match: { path: /app }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`,
  });
  envoy = checkClient(`127.0.0.1:${g.gw.gateway.extAuthzPort}`);
});

afterAll(async () => {
  envoy?.close();
  await g?.close();
  await op?.close();
  await upstream?.close();
});

describe('ext_authz gRPC browser login (plaintext listener, trusted by address)', () => {
  it('a navigation without a session: UNAUTHENTICATED with the 302 to the provider and every Set-Cookie appended', async () => {
    const r = await envoy.check({ path: '/app/page?a=1&b=%2F', headers: HTML });
    expect(r.status?.code).toBe(16);
    expect(r.denied_response?.status?.code).toBe('Found');
    const location = named(r.denied_response?.headers, 'location');
    expect(location).toHaveLength(1);
    expect(location[0]?.header.value?.startsWith(authorizationEndpoint)).toBe(true);
    expect(new URL(location[0]?.header.value as string).searchParams.get('redirect_uri')).toBe('https://app.example.com/.zt/callback');
    const cookies = named(r.denied_response?.headers, 'set-cookie');
    expect(cookies.length).toBeGreaterThan(0);
    for (const c of cookies) expect(c).toMatchObject({ append: { value: true }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
    expect(upstream.received).toEqual([]);
  });

  it('an API call without a session stays a 401 problem', async () => {
    const r = await envoy.check({ path: '/app/data', headers: { accept: 'application/json' } });
    expect(r.status?.code).toBe(16);
    expect(r.denied_response?.status?.code).toBe('Unauthorized');
    expect(JSON.parse(r.denied_response?.body ?? '{}')).toMatchObject({ code: 'GW_ERR_UNAUTHENTICATED', status: 401 });
  });

  it('a session passes with its identity; the gateway cookies never go upstream', async () => {
    const jar = new CookieJar();
    const start = await g.send('/app/home', { jar, headers: HTML });
    const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account: 'bob' });
    expect((await g.send(callback.slice(g.origin.length), { jar, headers: HTML })).status).toBe(302);
    const session = jar.header(`${g.origin}/app/page`);

    const ok = await envoy.check({ path: '/app/page', headers: { ...HTML, cookie: session, 'x-zt-user': 'alice' } });
    expect(ok.status?.code ?? 0).toBe(0);
    const upstreamSees = applyLikeEnvoy({ ...HTML, cookie: session, 'x-zt-user': 'alice' }, ok.ok_response ?? {});
    expect(upstreamSees['x-zt-auth-method']).toBe('session');
    expect(upstreamSees['x-zt-user']).not.toBe('alice');
    expect(upstreamSees['x-zt-user']).toBe(named(ok.ok_response?.headers, 'x-zt-user')[0]?.header.value);
    expect(upstreamSees.cookie).toBeUndefined(); // only the gateway's cookies were sent: removed
    expect(ok.ok_response?.headers_to_remove).toContain('cookie');

    const mixed = await envoy.check({ path: '/app/page', headers: { ...HTML, cookie: `theme=dark; ${session}; lang=de` } });
    expect(mixed.status?.code ?? 0).toBe(0);
    expect(applyLikeEnvoy({ cookie: `theme=dark; ${session}; lang=de` }, mixed.ok_response ?? {}).cookie).toBe('theme=dark; lang=de');
    expect(mixed.ok_response?.headers_to_remove).not.toContain('cookie');
    expect(upstream.received).toEqual([]);
  });
});
