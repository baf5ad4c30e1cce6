// Several OIDC providers in one gateway (each route names its own), one of them authenticating to the
// token endpoint with private_key_jwt instead of a client secret. A real oidc-provider on loopback.
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { CookieJar, loginAtProvider, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

const HTML = { accept: 'text/html' };
let op: TestOP;
let upstream: Upstream;
let g: OidcGateway;

beforeAll(async () => {
  const ca = await createCA('oidc providers CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-secret',
    providers: `  keyed: { type: oidc, issuer: "${op.issuer}", client_id: gw-keyed, private_key_jwt: { key: client.key, kid: client-1 }, timeout: 5s }`,
    files: { 'client.key': pem },
    routes: `  - name: keyed
    match: { path: /keyed }
    upstream: { url: ${upstream.url} }
    authenticate: [keyed]
    authorize: { allow: [{ authenticated: true }] }
  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`,
  });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'client-1', alg: 'ES256', use: 'sig' };
  await op.addClient({ client_id: 'gw-keyed', origin: g.origin, jwks: { keys: [jwk] } });
});

afterAll(async () => {
  await g?.close();
  await upstream?.close();
  await op?.close();
});

async function loginVia(path: string, jar: CookieJar, idp: CookieJar): Promise<URL> {
  const start = await g.send(path, { jar, headers: HTML });
  expect(start.status).toBe(302);
  const authorize = new URL(start.location as string);
  const { callback } = await loginAtProvider(op, authorize.href, idp, { account: 'carol' });
  const cb = await g.send(callback.slice(g.origin.length), { jar, headers: HTML });
  expect(cb.status, cb.text).toBe(302);
  expect(cb.location).toBe(path);
  return authorize;
}

describe('several OIDC providers', () => {
  it('each route sends the browser to its own client; private_key_jwt completes the code exchange', async () => {
    const jar = new CookieJar();
    const idp = new CookieJar();
    const authorize = await loginVia('/keyed/page', jar, idp);
    expect(authorize.searchParams.get('client_id')).toBe('gw-keyed');
    const r = await g.send('/keyed/page', { jar, headers: HTML });
    expect(r.status).toBe(200);
    const rec = upstream.received[upstream.received.length - 1];
    expect(rec?.url).toBe('/keyed/page');
    expect(rec?.headers['x-zt-user']).toBe('carol');
  });

  it("a session from one provider is not another provider's login: that route sends the browser to its own client", async () => {
    const jar = new CookieJar();
    const idp = new CookieJar();
    await loginVia('/keyed/page', jar, idp);
    const before = upstream.received.length;
    const other = await g.send('/app/page', { jar, headers: HTML });
    expect(other.status).toBe(302);
    expect(new URL(other.location as string).searchParams.get('client_id')).toBe('gw-secret');
    expect(upstream.received.length).toBe(before);
    // An API call with that session on the other route is a 401, never forwarded.
    const api = await g.send('/app/page', { jar, headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(upstream.received.length).toBe(before);
  });

  it('the secret-based client logs in on its own route too', async () => {
    const jar = new CookieJar();
    const idp = new CookieJar();
    const authorize = await loginVia('/app/home', jar, idp);
    expect(authorize.searchParams.get('client_id')).toBe('gw-secret');
    expect((await g.send('/app/home', { jar, headers: HTML })).status).toBe(200);
  });
});
