// A browser login through a REAL nginx (deploy/forward-auth/nginx.conf, unchanged but for the two addresses)
// on a NON-default port, against a real OpenID Provider: nginx terminates TLS on https://localhost:<port>,
// the gateway listens on plain HTTP on loopback. The IdP registers only https://localhost:<port>/.zt/callback
// for this client, so the round trip proves the redirect_uri keeps the port (the snippet forwards
// Host/X-Forwarded-Host as $http_host, not $host) and that the callback names the same one.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { root } from '../helpers/build.ts';
import { nginxAvailable, startNginx, type Nginx } from '../helpers/nginx.ts';
import { CookieJar, gatewayAgent, loginAtProvider, send, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';
import { IN_CI } from '../helpers/redis.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { rawMessage, valuesOf } from '../helpers/attack.ts';
import { rawRequest } from '../helpers/raw.ts';
import type { Agent } from 'undici';

const available = nginxAvailable(); // throws under CI=true when nginx is missing
if (!available && !IN_CI) console.warn('forward-auth-nginx-login.test.ts: nginx is not installed here; skipping (apt-get install nginx)');

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };

let op: TestOP;
let app: Upstream;
let g: OidcGateway;
let nginx: Nginx;
let browser: Agent;
let caCert: string;

describe.skipIf(!available)('forward-auth login through nginx on a non-default port', () => {
  beforeAll(async () => {
    const ca = await createCA('nginx login CA');
    caCert = ca.cert;
    const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    op = await startOidcProvider({ gatewayCa: ca.cert });
    app = await startUpstream();
    g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
      clientId: 'gw-nginx',
      plaintext: true,
      state: 'trusted_proxies: [127.0.0.1/32]',
      routes: `  - name: app
    match: { path: /app }
    upstream: { url: ${app.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`,
    });
    const snippet = readFileSync(`${root}deploy/forward-auth/nginx.conf`, 'utf8')
      .replaceAll('127.0.0.1:8443', `127.0.0.1:${g.gw.port}`)
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${app.port}`);
    nginx = await startNginx(snippet, { tls: leaf });
    // The IdP knows this app host only (as an operator registers each app host): not the gateway's own origin.
    await op.addClient({ client_id: g.clientId, client_secret: g.clientSecret, origin: nginx.url });
    browser = gatewayAgent(ca.cert);
  });

  afterAll(async () => {
    await browser?.close();
    await nginx?.stop();
    await g?.close();
    await op?.close();
    await app?.close();
  });

  it('logs in and comes back to the page, redirect_uri https://localhost:<port>/.zt/callback all along', async () => {
    expect(nginx.port).not.toBe(443);
    const jar = new CookieJar();
    const at = (path: string) => `${nginx.url}${path}`;
    const first = await send(at('/app/page?x=1'), { jar, headers: HTML, dispatcher: browser });
    expect(first.status).toBe(302);
    expect(first.location).toBe(at(`/.zt/login?provider=corp&return_to=${encodeURIComponent('/app/page?x=1')}`)); // nginx makes it absolute
    const login = await send(first.location as string, { jar, headers: HTML, dispatcher: browser });
    expect(login.status).toBe(302);
    const authorize = new URL(login.location as string);
    expect(authorize.origin).toBe(op.issuer);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`https://localhost:${nginx.port}/.zt/callback`);

    const { callback } = await loginAtProvider(op, authorize.href, new CookieJar(), { account: 'alice' });
    expect(callback.startsWith(`https://localhost:${nginx.port}/.zt/callback?`)).toBe(true);
    const back = await send(callback, { jar, headers: HTML, dispatcher: browser });
    expect(back.status, back.text).toBe(302);
    expect(new URL(back.location as string, nginx.url).href).toBe(at('/app/page?x=1'));

    const page = await send(at('/app/page?x=1'), { jar, headers: HTML, dispatcher: browser });
    expect(page.status).toBe(200);
    const seen = app.received.filter((r) => r.url === '/app/page?x=1');
    expect(seen).toHaveLength(1);
    expect(valuesOf(seen[0]!, 'x-zt-user')).toEqual(['alice']);
    expect(valuesOf(seen[0]!, 'x-zt-auth-method')).toEqual(['session']);
    // The app is told the Host the browser used, port included.
    expect(valuesOf(seen[0]!, 'host')).toEqual([`localhost:${nginx.port}`]);
    // The provider's token endpoint accepted the code for that redirect_uri.
    expect(op.tokenRequests.filter((t) => t.clientId === g.clientId).map((t) => t.status)).toEqual([200]);
  });

  it("a refused path reaches the browser as the gateway's 400 (through error_page), never nginx's 500", async () => {
    // Sent byte for byte (undici would resolve %2e%2e itself), over TLS that trusts the test CA only.
    const a = await rawRequest(nginx.port, rawMessage(nginx.port, '/app/%2e%2e/admin', { host: `localhost:${nginx.port}`, headers: [`Accept: ${HTML.accept}`] }), {
      tls: { ca: caCert, servername: 'localhost' },
      timeoutMs: 3000,
    });
    expect(a.status).toBe(400);
    expect(app.received.filter((r) => r.url.includes('%') || r.url.includes('..'))).toEqual([]);
    expect(nginx.errorLog()).not.toContain('auth request unexpected status');
  });
});
