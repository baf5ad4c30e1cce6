// listen.public_urls (issue 17 item 8): behind a TLS-terminating proxy the gateway listens on plain HTTP, so
// redirect URIs built from the connection and Host would be http:// on the wrong port. The public URL of the
// host gives the scheme and port of the redirect URI (checked at a real oidc-provider, which accepts only the
// registered one) and the origin that cross-site checks compare against; when set, only its hosts start a
// login. A Host no route names never starts one (404). Without public_urls, the trusted proxy's
// X-Forwarded-Proto/-Host count. A Host that disagrees with its public URL is logged once.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { CookieJar, loginAtProvider, SESSION_SECRET, startOidcProvider, type TestOP } from '../helpers/oidc-provider.ts';

const PUBLIC = 'https://crm.example.com:8444';
const HTML = { accept: 'text/html' };

let op: TestOP;
let upstream: Upstream;
let withUrls: TestGateway;
let withoutUrls: TestGateway;

function config(clientId: string, extra: string): string {
  return `listen:
  address: 127.0.0.1:0
  plaintext: true
${extra}
trusted_proxies: [127.0.0.1/32]
shutdown: { drain_timeout: 1s }
log: { level: info, access: false }
identity_providers:
  corp: { type: oidc, issuer: "${op.issuer}", client_id: ${clientId}, client_secret: "\${env:OIDC_SECRET}", timeout: 5s }
session: { secret: "\${env:SESSION_SECRET}" }
routes:
  - name: crm
    match: { host: crm.example.com }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
  - name: intranet
    match: { host: [intranet.example.com, "*.apps.example.com"] }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;
}

interface Answer {
  status: number;
  location: string | undefined;
  setCookie: string[];
  body: string;
}

/** A request as the TLS-terminating proxy in front sends it: any Host, X-Forwarded-* as given. */
function viaProxy(gw: TestGateway, path: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gw.port, path, method, headers, setHost: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, setCookie: res.headers['set-cookie'] ?? [], body: text }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

beforeAll(async () => {
  const ca = await createCA('public urls CA');
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  await op.addClient({ client_id: 'gw-public', client_secret: 'public-secret-0123456789', origin: PUBLIC });
  await op.addClient({ client_id: 'gw-forwarded', client_secret: 'forwarded-secret-0123456789', origin: 'https://crm.example.com:9443' });
  withUrls = await startGateway(config('gw-public', `  public_urls: [${PUBLIC}, "https://intranet.example.com/"]`), { env: { OIDC_SECRET: 'public-secret-0123456789', SESSION_SECRET } });
  withoutUrls = await startGateway(config('gw-forwarded', ''), { env: { OIDC_SECRET: 'forwarded-secret-0123456789', SESSION_SECRET } });
});

afterAll(async () => {
  await withUrls?.close();
  await withoutUrls?.close();
  await upstream?.close();
  await op?.close();
});

describe('listen.public_urls behind a TLS-terminating proxy', () => {
  it("the redirect URI sent to the IdP has the public URL's scheme and port; the IdP accepts it", async () => {
    for (const path of ['/reports', '/.zt/login?return_to=/reports']) {
      const r = await viaProxy(withUrls, path, { host: 'crm.example.com', 'x-forwarded-proto': 'https', ...HTML });
      expect(r.status, path).toBe(302);
      const authorize = new URL(r.location as string);
      expect(authorize.origin).toBe(op.issuer);
      expect(authorize.searchParams.get('redirect_uri')).toBe(`${PUBLIC}/.zt/callback`);
    }
  });

  it('a whole login through the proxy: the callback and the session work, and the origin check uses the public URL', async () => {
    const start = await viaProxy(withUrls, '/reports', { host: 'crm.example.com', 'x-forwarded-proto': 'https', ...HTML });
    const tx = start.setCookie.map((c) => c.split(';', 1)[0]).join('; ');
    const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account: 'bob' });
    expect(callback.startsWith(`${PUBLIC}/.zt/callback?`)).toBe(true);
    const cb = await viaProxy(withUrls, callback.slice(PUBLIC.length), { host: 'crm.example.com', 'x-forwarded-proto': 'https', cookie: tx, ...HTML });
    expect(cb.status, cb.body).toBe(302);
    const session = cb.setCookie.find((c) => c.startsWith('__Host-zt='))?.split(';', 1)[0] as string;
    expect(session).toBeDefined();
    const post = (origin: string) => viaProxy(withUrls, '/save', { host: 'crm.example.com', 'x-forwarded-proto': 'https', cookie: session, origin, 'content-type': 'text/plain' }, 'POST', 'x');
    const before = upstream.received.length;
    expect((await post(PUBLIC)).status).toBe(200);
    expect(upstream.received.length).toBe(before + 1);
    for (const origin of ['https://crm.example.com', `http://127.0.0.1:${withUrls.port}`, 'http://crm.example.com:8444']) {
      const r = await post(origin);
      expect(r.status, origin).toBe(403);
      expect(JSON.parse(r.body).code).toBe('GW_ERR_CROSS_SITE');
    }
    expect(upstream.received.length).toBe(before + 1);
  });

  it('a host that a route names but public_urls does not list never starts a login (404)', async () => {
    for (const host of ['app.apps.example.com']) {
      for (const path of ['/page', '/.zt/login']) {
        const r = await viaProxy(withUrls, path, { host, 'x-forwarded-proto': 'https', ...HTML });
        expect({ host, path, status: r.status, location: r.location }).toEqual({ host, path, status: 404, location: undefined });
        expect(r.setCookie).toEqual([]);
      }
    }
    // Listed with a trailing slash and the default port: still its host's public URL.
    const listed = await viaProxy(withUrls, '/.zt/login', { host: 'intranet.example.com', 'x-forwarded-proto': 'https', ...HTML });
    expect(new URL(listed.location as string).searchParams.get('redirect_uri')).toBe('https://intranet.example.com/.zt/callback');
  });

  it('a mismatch between the public URL and the Host is logged once, with both values', async () => {
    for (let i = 0; i < 3; i++) await viaProxy(withUrls, '/.zt/login', { host: 'crm.example.com:9999', ...HTML });
    const logged = withUrls.logs.filter((l) => l.event === 'public_url_mismatch');
    expect(logged.filter((l) => l.host === 'crm.example.com:9999')).toEqual([expect.objectContaining({ public_url: PUBLIC, host: 'crm.example.com:9999' })]);
    // The earlier tests' proxy sent Host without the public port: that pair was logged once too.
    expect(logged.filter((l) => l.host === 'crm.example.com')).toHaveLength(1);
    expect(logged.filter((l) => l.host === 'intranet.example.com')).toHaveLength(0);
  });
});

describe('a Host that no route names never starts a login', () => {
  it('/.zt/login and a navigation on an unnamed host: 404, no transaction cookie, nothing sent to the IdP', async () => {
    for (const gw of [withUrls, withoutUrls]) {
      const served = op.served.get('/auth') ?? 0;
      for (const path of ['/.zt/login', '/.zt/login?provider=corp&return_to=/x', '/page']) {
        const r = await viaProxy(gw, path, { host: 'evil.example', 'x-forwarded-proto': 'https', ...HTML });
        expect({ path, status: r.status, location: r.location }).toEqual({ path, status: 404, location: undefined });
        expect(r.setCookie).toEqual([]);
      }
      expect(op.served.get('/auth') ?? 0).toBe(served);
    }
  });

  it('a wildcard host pattern names its subdomains (login starts), not the bare domain', async () => {
    const sub = await viaProxy(withoutUrls, '/.zt/login', { host: 'x.apps.example.com', ...HTML });
    expect(sub.status).toBe(302);
    const bare = await viaProxy(withoutUrls, '/.zt/login', { host: 'apps.example.com', ...HTML });
    expect(bare.status).toBe(404);
  });
});

describe('without public_urls: a trusted proxy\'s X-Forwarded-Proto/-Host make the redirect URI', () => {
  it('https and the forwarded host with its port', async () => {
    const r = await viaProxy(withoutUrls, '/reports', { host: 'crm.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'crm.example.com:9443', ...HTML });
    expect(r.status).toBe(302);
    expect(new URL(r.location as string).searchParams.get('redirect_uri')).toBe('https://crm.example.com:9443/.zt/callback');
    const idp = await fetch(r.location as string, { redirect: 'manual' });
    await idp.arrayBuffer();
    expect(idp.status).toBe(303); // on to the login interaction: the IdP accepted the redirect URI
  });

  it('no forwarded headers: the connection\'s scheme and the Host', async () => {
    const r = await viaProxy(withoutUrls, '/reports', { host: 'crm.example.com:8080', ...HTML });
    expect(new URL(r.location as string).searchParams.get('redirect_uri')).toBe('http://crm.example.com:8080/.zt/callback');
  });
});
