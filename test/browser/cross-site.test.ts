// Cross-site riding of a cookie session, in a real browser (Debian's Chromium driven by playwright-core): a page
// on the same host but another port is same-site and cross-origin, so Chromium sends the SameSite=Lax session
// cookie with its form post and its WebSocket handshake. Both must get 403 GW_ERR_CROSS_SITE, the upstream must
// receive neither; the same form and socket from the gateway's own origin work (the control).
//
// The session comes from a real oidc-provider login (node client); its cookie is handed to Chromium as the
// browser would have stored it. Chromium trusts exactly the test's localhost certificate (by SPKI hash).
// Without Chromium at /usr/bin/chromium the test is skipped, except with CI=true, where it fails.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { type Browser, type BrowserContext } from 'playwright-core';
import { describeWithChromium, launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createCA } from '../../tools/pki.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { CookieJar, loginAtProvider, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

const TITLE = 'cross-site requests from a same-site page (Chromium)';
describeWithChromium(TITLE, crossSite);

/** A form that posts itself on load, and a button that opens a WebSocket, both aimed at `gw`. */
function attackPage(gw: string): string {
  return `<!DOCTYPE html><html><body>
<form id="f" method="post" action="${gw}/app/transfer" enctype="application/x-www-form-urlencoded">
<input name="to" value="mallory"><input name="amount" value="1000"><button id="go">go</button></form>
</body></html>`;
}

function crossSite(): void {
  let op: TestOP;
  let upstream: Upstream;
  let g: OidcGateway;
  let attacker: https.Server;
  let attackerOrigin = '';
  let browser: Browser | undefined;
  let context: BrowserContext;
  const upgrades: string[] = [];

  beforeAll(async () => {
    const ca = await createCA('browser cross-site CA');
    const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    op = await startOidcProvider({ gatewayCa: ca.cert });
    // The app: a page with the same form (the control), and a WebSocket endpoint that counts handshakes.
    upstream = await startUpstream((req, res) => {
      if (req.url !== '/app/own-page') return false;
      const html = attackPage(''); // the same form, on the gateway's own origin
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
      return true;
    });
    const wss = new WebSocketServer({ noServer: true });
    upstream.server.on('upgrade', (req, socket, head) => {
      upgrades.push(req.url ?? '');
      wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(`echo:${d.toString()}`)));
    });
    g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
      clientId: 'gw-browser-xsite',
      routes: `  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    security_headers: { csp: false }
`,
    });
    // The attacker: same host (localhost), another port, also https (schemeful same-site).
    attacker = https.createServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(attackPage(g.origin));
    });
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    attackerOrigin = `https://localhost:${(attacker.address() as AddressInfo).port}`;

    // A real login (node client) for the session cookie; Chromium gets it as it would have stored it.
    const jar = new CookieJar();
    const start = await g.send('/app/start', { jar, headers: { accept: 'text/html' } });
    const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account: 'bob' });
    expect((await g.send(callback.slice(g.origin.length), { jar })).status).toBe(302);
    const value = jar.get(g.origin, '__Host-zt') as string;

    browser = await launchChromium([leaf.cert]);
    context = await browser.newContext();
    context.setDefaultTimeout(10_000);
    await context.addCookies([{ name: '__Host-zt', value, url: `${g.origin}/`, secure: true, httpOnly: true, sameSite: 'Lax' }]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await new Promise<void>((r) => (attacker ? attacker.close(() => r()) : r()));
    await g?.close();
    await upstream?.close();
    await op?.close();
  }, 20_000);

  /** The decision record of the last request to `path` (the gateway logs one per request). */
  const decision = (path: string) => [...g.gw.logs].reverse().find((l) => l.msg === 'decision' && l.path === path);

  it('a form post from the same-site page: the cookie is sent, the gateway answers 403 GW_ERR_CROSS_SITE, the app gets nothing', async () => {
    const page = await context.newPage();
    const before = upstream.received.filter((r) => r.url === '/app/transfer').length;
    await page.goto(`${attackerOrigin}/`);
    const [response] = await Promise.all([page.waitForResponse(`${g.origin}/app/transfer`), page.click('#go')]);
    expect(response.status()).toBe(403);
    expect(((await response.json()) as { code: string }).code).toBe('GW_ERR_CROSS_SITE');
    // Chromium did send the session cookie (a same-site request): the refusal names the session's subject.
    expect(decision('/app/transfer')).toMatchObject({ status: 403, code: 'GW_ERR_CROSS_SITE', subject: 'bob' });
    expect(upstream.received.filter((r) => r.url === '/app/transfer').length).toBe(before);
    await page.close();
  }, 30_000);

  it('new WebSocket from the same-site page: 403 GW_ERR_CROSS_SITE, the upstream never gets the upgrade', async () => {
    const page = await context.newPage();
    await page.goto(`${attackerOrigin}/`);
    const outcome = await page.evaluate(
      (url) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve('open');
          ws.onerror = () => resolve('error');
          setTimeout(() => resolve('timeout'), 5000);
        }),
      `${g.origin.replace('https:', 'wss:')}/app/ws-attack`,
    );
    expect(outcome).toBe('error');
    await waitFor(() => decision('/app/ws-attack') !== undefined, { timeoutMs: 3000, intervalMs: 20, what: 'the decision record of the refused upgrade' });
    expect(decision('/app/ws-attack')).toMatchObject({ status: 403, code: 'GW_ERR_CROSS_SITE', subject: 'bob' });
    expect(upgrades).not.toContain('/app/ws-attack');
    await page.close();
  }, 30_000);

  it('the control: the same form and socket from the gateway\'s own origin work', async () => {
    const page = await context.newPage();
    await page.goto(`${g.origin}/app/own-page`);
    const [response] = await Promise.all([page.waitForResponse(`${g.origin}/app/transfer`), page.click('#go')]);
    expect(response.status()).toBe(200);
    expect(upstream.received.some((r) => r.url === '/app/transfer' && r.method === 'POST')).toBe(true);
    const outcome = await page.evaluate(
      (url) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => {
            ws.close();
            resolve('open');
          };
          ws.onerror = () => resolve('error');
          setTimeout(() => resolve('timeout'), 5000);
        }),
      `${g.origin.replace('https:', 'wss:')}/app/ws-own`,
    );
    expect(outcome).toBe('open');
    expect(upgrades).toContain('/app/ws-own');
    await page.close();
  }, 30_000);
}
