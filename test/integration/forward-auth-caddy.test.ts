// Forward-auth through a REAL Caddy (Debian's 2.6, forward_auth) using deploy/forward-auth/Caddyfile, unchanged
// but for the addresses, the CA file and the site's certificate: Caddy on https://localhost:<free port> (a
// NON-default port), the gateway with TLS on loopback, trusted by Caddy through tls_trusted_ca_certs (the
// test's own CA; verification never skipped). API keys: allowed, denied, identity headers copied, spoofed
// X-ZT-* stripped even where the gateway's answer has none; refused paths relayed as the gateway's 400; and a
// login round trip in Chromium against the demo IdP, whose redirect_uri keeps Caddy's port.
import { readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { startDemoIdp, DEMO_ACCOUNTS } from '../../examples/demo/idp.js';
import { createCA } from '../../tools/pki.ts';
import { apiKeyFixture } from '../helpers/api-keys.ts';
import { rawMessage, valuesOf, type Answer } from '../helpers/attack.ts';
import { arrive, chromiumAvailable, launchChromium, loginAtDemoIdp } from '../helpers/browser.ts';
import { root } from '../helpers/build.ts';
import { caddyAvailable, startCaddy, type Caddy } from '../helpers/caddy.ts';
import { gatewayAgent, startOidcGateway, type OidcGateway } from '../helpers/oidc-provider.ts';
import { rawRequest } from '../helpers/raw.ts';
import { IN_CI } from '../helpers/redis.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const available = caddyAvailable() && chromiumAvailable(); // both throw under CI=true when missing
if (!available && !IN_CI) console.warn('forward-auth-caddy.test.ts: caddy or Chromium is not installed here; skipping (apt-get install caddy chromium)');

const { ops: OPS_KEY, plain: PLAIN_KEY, dev: DEV_KEY, yaml: KEYS } = apiKeyFixture('cd');
const SCREENSHOT = join(root, 'test-output', 'forward-auth', 'caddy-login.png');

interface DemoIdp {
  issuer: string;
  register(c: { client_id: string; client_secret: string; origin: string; origins?: string[] }): Promise<void>;
  close(): Promise<void>;
}

let app: Upstream;
let idp: DemoIdp;
let g: OidcGateway;
let caddy: Caddy;
let client: Agent;
let caCert: string;
let leafCert: string;
let browser: Browser | undefined;
let context: BrowserContext;

async function get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`${caddy.url}${path}`, { headers, dispatcher: client });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

function appSaw(path: string) {
  const hits = app.received.filter((r) => r.url === path);
  expect(hits, `app requests for ${path}`).toHaveLength(1);
  return hits[0] as (typeof hits)[number];
}
const appNeverSaw = (prefix: string) => expect(app.received.filter((r) => r.url.startsWith(prefix))).toEqual([]);

describe.skipIf(!available)('forward-auth through Caddy forward_auth', () => {
  beforeAll(async () => {
    const ca = await createCA('caddy forward-auth CA');
    const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    caCert = ca.cert;
    leafCert = leaf.cert;
    app = await startUpstream();
    idp = (await startDemoIdp({ gatewayCa: ca.cert })) as DemoIdp;
    g = await startOidcGateway(
      { issuer: idp.issuer, addClient: (spec) => idp.register({ client_id: spec.client_id, client_secret: spec.client_secret ?? '', origin: spec.origin }) },
      { ca: ca.cert, ...leaf },
      {
        clientId: 'gw-caddy',
        state: 'trusted_proxies: [127.0.0.1/32]',
        providers: '  keys: { type: api_key, keys_file: api-keys.yaml }',
        files: { 'api-keys.yaml': KEYS },
        routes: `  - name: app
    match: { path: /app }
    upstream: { url: ${app.url} }
    authenticate: [corp, keys]
    authorize: { allow: [{ groups: ops }, { subject: [alice, svc-plain] }] }
`,
      },
    );
    const site = readFileSync(join(root, 'deploy/forward-auth/Caddyfile'), 'utf8')
      .replace('app.example.com {', '__SITE__ {')
      .replaceAll('127.0.0.1:8443', `127.0.0.1:${g.gw.port}`)
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${app.port}`)
      .replaceAll('/etc/caddy/zt-gateway-ca.crt', '__DIR__/zt-gateway-ca.crt');
    caddy = await startCaddy(site, leaf, { 'zt-gateway-ca.crt': ca.cert });
    // The gateway's own origin and Caddy's (port included): every app host's /.zt/callback is registered at the IdP.
    await idp.register({ client_id: g.clientId, client_secret: g.clientSecret, origin: g.origin, origins: [caddy.url] });
    client = gatewayAgent(ca.cert);
  }, 40_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await client?.close();
    await caddy?.stop();
    await g?.close();
    await idp?.close();
    await app?.close();
  });

  it('an API key: the app is reached with the identity the gateway verified; the key is not passed on', async () => {
    const a = await get('/app/with-key?x=1', { authorization: `ApiKey ${OPS_KEY}`, accept: 'application/json' });
    expect(a.status).toBe(200);
    const seen = appSaw('/app/with-key?x=1');
    expect(valuesOf(seen, 'x-zt-user')).toEqual(['svc-ops']);
    expect(valuesOf(seen, 'x-zt-groups')).toEqual(['ops']);
    expect(valuesOf(seen, 'x-zt-auth-method')).toEqual(['api_key']);
    expect(valuesOf(seen, 'x-zt-assertion')[0]).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(valuesOf(seen, 'authorization')).toEqual([]);
    const [id] = valuesOf(seen, 'x-request-id');
    const record = g.gw.logs.find((l) => l.msg === 'decision' && l.request_id === id);
    expect(record).toMatchObject({ forward_auth: true, route: 'app', path: '/app/with-key', decision: 'allow', subject: 'svc-ops', status: 200 });
  });

  it('no credentials (API client): 401; a caller the policy refuses: 403; the app never reached', async () => {
    const anon = await get('/app/anon', { accept: 'application/json' });
    expect(anon.status).toBe(401);
    expect(JSON.parse(anon.body)).toMatchObject({ code: 'GW_ERR_UNAUTHENTICATED' });
    const dev = await get('/app/dev', { authorization: `ApiKey ${DEV_KEY}`, accept: 'application/json' });
    expect(dev.status).toBe(403);
    expect(JSON.parse(dev.body)).toMatchObject({ code: 'GW_ERR_FORBIDDEN' });
    appNeverSaw('/app/anon');
    appNeverSaw('/app/dev');
  });

  it('identity headers sent by the client never reach the app, in either spelling, even where the gateway sends none', async () => {
    const spoof = { 'x-zt-user': 'admin', 'X-ZT-Groups': 'admins', 'x-zt-email': 'root@corp.example', 'X_ZT_User': 'admin', 'X_ZT_Email': 'root@corp.example', 'x-zt-auth-method': 'mtls', 'x-zt-spiffe-id': 'spiffe://evil/admin' };
    expect((await get('/app/spoof-anon', { ...spoof, accept: 'application/json' })).status).toBe(401);
    appNeverSaw('/app/spoof-anon');
    // svc-plain has no groups and no email: the gateway's answer carries no X-ZT-Groups/-Email to copy.
    expect((await get('/app/spoof-key', { ...spoof, authorization: `ApiKey ${PLAIN_KEY}` })).status).toBe(200);
    const seen = appSaw('/app/spoof-key');
    // valuesOf folds '_' into '-': one X-ZT-User in any spelling, the gateway's.
    expect(valuesOf(seen, 'x-zt-user')).toEqual(['svc-plain']);
    expect(valuesOf(seen, 'x-zt-auth-method')).toEqual(['api_key']);
    // No header at all where the gateway sent none (not the client's, not Caddy 2.6's placeholder text).
    for (const name of ['x-zt-groups', 'x-zt-email', 'x-zt-spiffe-id']) expect(valuesOf(seen, name), name).toEqual([]);
    for (let i = 1; i < seen.rawHeaders.length; i += 2) expect(seen.rawHeaders[i]).not.toMatch(/admin|root@corp/);
  });

  it("a POST is checked as the POST Caddy holds (the client's own X-Forwarded-* are overwritten); the body reaches only the app", async () => {
    const forged = { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/app/other', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' };
    const res = await request(`${caddy.url}/app/form`, {
      method: 'POST',
      body: 'a=1&b=2',
      headers: { ...forged, authorization: `ApiKey ${OPS_KEY}`, 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      dispatcher: client,
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const seen = appSaw('/app/form');
    expect(seen.method).toBe('POST');
    expect(seen.bodyBytes).toBe(7);
    const [id] = valuesOf(seen, 'x-request-id');
    expect(g.gw.logs.find((l) => l.msg === 'decision' && l.request_id === id)).toMatchObject({ forward_auth: true, method: 'POST', path: '/app/form', subject: 'svc-ops' });
    appNeverSaw('/app/other');
  });

  it("a refused path never reaches the app: the gateway's own 400 is relayed", async () => {
    const send = (target: string) =>
      rawRequest(caddy.port, rawMessage(caddy.port, target, { host: `localhost:${caddy.port}`, headers: [`Authorization: ApiKey ${OPS_KEY}`, 'Accept: application/json'] }), {
        tls: { ca: caCert, servername: 'localhost' },
        timeoutMs: 3000,
      });
    for (const target of ['/app/%2e%2e/admin', '/app/.%2e/admin', '/app/a%2Fb', '/app/%c0%ae%c0%ae/etc', '/app/a%5c..%5cb', '/app/..;x/admin']) {
      const a = await send(target);
      expect(a.status, target).toBe(400);
      expect(JSON.parse(a.body), target).toMatchObject({ status: 400, code: 'GW_ERR_BAD_PATH' });
    }
    expect(app.received.filter((r) => r.url.includes('%') || r.url.includes('..'))).toEqual([]);
  });

  it('clients cannot call /.zt/verify through Caddy; a forged X-Original-URL does not change what is checked', async () => {
    const v = await get('/.zt/verify', { 'x-forwarded-uri': '/app/x', authorization: `ApiKey ${OPS_KEY}` });
    expect(v.status).toBe(404);
    expect(v.headers['x-zt-user']).toBeUndefined();
    const forged = await get('/app/orig', { 'x-original-url': `${caddy.url}/somewhere/else`, 'x-original-method': 'GET', authorization: `ApiKey ${DEV_KEY}`, accept: 'application/json' });
    expect(forged.status).toBe(403);
    appNeverSaw('/app/orig');
  });

  it('a browser logs in at the IdP on the non-default port and comes back to the page it asked for', async () => {
    expect(caddy.port).not.toBe(443);
    browser = await launchChromium([leafCert]);
    context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    const target = `${caddy.url}/app/page?from=caddy`;
    const asked: string[] = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.origin === idp.issuer && u.pathname === '/auth') asked.push(u.searchParams.get('redirect_uri') ?? '');
    });
    await page.goto(target);
    const alice = DEMO_ACCOUNTS.alice as { password: string };
    await loginAtDemoIdp(page, idp.issuer, 'alice', alice.password);
    await arrive(page, target, 'the app page after the login');
    expect(asked).toEqual([`https://localhost:${caddy.port}/.zt/callback`]);
    const text = await page.locator('body').innerText();
    expect(text).toContain('/app/page?from=caddy');
    const seen = app.received.filter((r) => r.url === '/app/page?from=caddy');
    expect(seen).toHaveLength(1);
    expect(valuesOf(seen[0]!, 'x-zt-user')).toEqual(['alice']);
    expect(valuesOf(seen[0]!, 'x-zt-email')).toEqual(['alice@example.com']);
    expect(valuesOf(seen[0]!, 'x-zt-auth-method')).toEqual(['session']);
    mkdirSync(join(root, 'test-output', 'forward-auth'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
  }, 60_000);
});
