// Pages for people in a real browser (Debian's Chromium driven by playwright-core): bob is denied a route that
// needs a just-in-time grant, sees the gateway's 403 page, submits its "Request access" form, and lands on his
// /.zt/grants list; alice (an approver) opens /.zt/grants, sees his request, approves it with the button, and
// bob gets in. A second request is denied (audited grant.deny). A cross-site form post (a page of the same host
// on another port: same-site, cross-origin) cannot file a request. Chromium reports no CSP violation on the
// pages (their only style is allowed by its hash; they have no script).
//
// Sessions come from real oidc-provider logins (node client, as test/browser/cross-site.test.ts does: the test
// IdP's login prompt is not a page); Chromium gets the cookies as it would have stored them.
// Without Chromium at /usr/bin/chromium the test is skipped, except with CI=true, where it fails.
import { mkdirSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { describeWithChromium, launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { CookieJar, loginAtProvider, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = join(root, 'test-output', 'browser');
const TITLE = 'pages for people: request access and approve in Chromium';
describeWithChromium(TITLE, grantsPages);

function grantsPages(): void {
  let op: TestOP;
  let upstream: Upstream;
  let g: OidcGateway;
  let attacker: https.Server;
  let attackerOrigin = '';
  let browser: Browser | undefined;
  let bob: BrowserContext;
  let alice: BrowserContext;
  const cspViolations: string[] = [];

  async function sessionCookie(account: string): Promise<string> {
    const jar = new CookieJar();
    const start = await g.send('/db/start', { jar, headers: { accept: 'text/html' } });
    const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account });
    expect((await g.send(callback.slice(g.origin.length), { jar })).status).toBe(302);
    return jar.get(g.origin, '__Host-zt') as string;
  }

  async function contextFor(account: string): Promise<BrowserContext> {
    const context = await (browser as Browser).newContext();
    context.setDefaultTimeout(10_000);
    await context.addCookies([{ name: '__Host-zt', value: await sessionCookie(account), url: `${g.origin}/`, secure: true, httpOnly: true, sameSite: 'Lax' }]);
    return context;
  }

  async function open(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  }

  const grantsOf = (subject: string) => [...g.gw.gateway.runtime.access.list('grants').values()].filter((x) => x.subject === subject);

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const ca = await createCA('browser grants CA');
    const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    op = await startOidcProvider({ gatewayCa: ca.cert });
    upstream = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>db</title><p id="who">${String(req.headers['x-zt-user'])} is in the db console</p>`);
      return true;
    });
    g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
      clientId: 'gw-browser-grants',
      extra: `grants:
  db-access: { approvers: [admins], max_duration: 4h }`,
      routes: `  - name: db
    match: { path: /db }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ grant: db-access }] }
`,
    });
    attacker = https.createServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><form id="f" method="post" action="${g.origin}/.zt/grants">
<input name="grant" value="db-access"><input name="justification" value="forged"><input name="duration" value="4h"><button id="go">go</button></form>`);
    });
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    attackerOrigin = `https://localhost:${(attacker.address() as AddressInfo).port}`;
    browser = await launchChromium([leaf.cert]);
    bob = await contextFor('bob');
    alice = await contextFor('alice');
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await new Promise<void>((r) => (attacker ? attacker.close(() => r()) : r()));
    await g?.close();
    await upstream?.close();
    await op?.close();
  }, 20_000);

  it('denied → Request access → approver approves in /.zt/grants → the user gets in', async () => {
    const page = await open(bob);
    const denied = await page.goto(`${g.origin}/db/console`);
    expect(denied?.status()).toBe(403);
    expect(await page.textContent('h1')).toBe('Access denied');
    const requestId = denied?.headers()['x-request-id'] as string;
    expect(await page.textContent('dl')).toContain(requestId);
    // Its style applies (allowed by hash): the page is not unstyled.
    expect(await page.evaluate(() => getComputedStyle(document.querySelector('main') as Element).borderRadius)).toBe('10px');
    await page.screenshot({ path: join(SHOTS, 'grants-403.png') });

    await page.fill('textarea[name=justification]', 'INC-9: check the <orders> table');
    await page.selectOption('select[name=duration]', '1h');
    await Promise.all([page.waitForURL(`${g.origin}/.zt/grants`), page.click('form.ra button[type=submit]')]);
    expect(await page.textContent('h1')).toBe('Access requests');
    expect(await page.textContent('table')).toContain('INC-9: check the <orders> table');
    expect(await page.textContent('table')).toContain('pending');
    const [filed] = grantsOf('bob');
    expect(filed).toMatchObject({ grant: 'db-access', status: 'pending', durationMs: 3_600_000, justification: 'INC-9: check the <orders> table' });

    const approverPage = await open(alice);
    await approverPage.goto(`${g.origin}/.zt/grants`);
    expect(await approverPage.textContent('body')).toContain('Waiting for your approval');
    const row = approverPage.locator('tr', { hasText: 'INC-9' });
    expect(await row.textContent()).toContain('bob');
    await approverPage.screenshot({ path: join(SHOTS, 'grants-approver.png') });
    await Promise.all([approverPage.waitForURL(`${g.origin}/.zt/grants`), row.locator('button', { hasText: 'Approve' }).click()]);
    expect(await approverPage.textContent('body')).toContain('No request is waiting for your approval.');
    expect(grantsOf('bob')[0]).toMatchObject({ status: 'approved', approvedBy: 'alice' });

    const inside = await page.goto(`${g.origin}/db/console`);
    expect(inside?.status()).toBe(200);
    expect(await page.textContent('#who')).toBe('bob is in the db console');
    await page.close();
    await approverPage.close();
  });

  it('a person not signed in who opens /.zt/grants signs in and comes back to it', async () => {
    const jar = new CookieJar();
    const start = await g.send('/.zt/grants', { jar, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    expect(start.status).toBe(302);
    expect(start.location?.startsWith(op.issuer)).toBe(true);
    const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account: 'carol', otp: '123456' });
    const back = await g.send(callback.slice(g.origin.length), { jar });
    expect({ status: back.status, location: back.location }).toEqual({ status: 302, location: '/.zt/grants' });
    const list = await g.send('/.zt/grants', { jar, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    expect(list.status).toBe(200);
    expect(list.text).toContain('Signed in as <strong>carol</strong>');
    // A script without a session gets the 401 problem, not a redirect.
    const api = await g.send('/.zt/grants');
    expect({ status: api.status, code: api.json.code }).toEqual({ status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
  });

  it('deny: the approver denies a second request; bob sees it denied; audited grant.deny', async () => {
    const page = await open(bob);
    await page.goto(`${g.origin}/.zt/grants`);
    expect(await page.textContent('body')).not.toContain('Waiting for your approval'); // bob approves nothing
    // A second request, posted as the 403 page's form posts it (same origin, urlencoded).
    const bobCookie = (await bob.cookies(g.origin)).find((c) => c.name === '__Host-zt')?.value as string;
    const filed = await g.send('/.zt/grants', {
      method: 'POST',
      headers: { cookie: `__Host-zt=${bobCookie}`, 'sec-fetch-site': 'same-origin', 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: 'grant=db-access&justification=second+one&duration=15m',
    });
    expect(filed.status).toBe(303);
    const second = grantsOf('bob').find((x) => x.justification === 'second one');
    expect(second?.status).toBe('pending');

    const approverPage = await open(alice);
    await approverPage.goto(`${g.origin}/.zt/grants`);
    const row = approverPage.locator('tr', { hasText: 'second one' });
    await Promise.all([approverPage.waitForURL(`${g.origin}/.zt/grants`), row.locator('button', { hasText: 'Deny' }).click()]);
    expect(grantsOf('bob').find((x) => x.id === second?.id)).toMatchObject({ status: 'denied', deniedBy: 'alice' });
    const audit = g.gw.logs.filter((l) => l.audit === true && l.event === 'grant.deny' && l.grant_id === second?.id);
    expect(audit.map((l) => [l.status, l.approver, l.subject])).toEqual([[200, 'alice', 'bob']]);

    await page.goto(`${g.origin}/.zt/grants`);
    expect(await page.locator('tr', { hasText: 'second one' }).textContent()).toContain('denied');
    await page.close();
    await approverPage.close();
  });

  it('a cross-site form post cannot file a request (403 GW_ERR_CROSS_SITE); no CSP violation on any page', async () => {
    const before = grantsOf('alice').length;
    const page = await open(alice);
    await page.goto(`${attackerOrigin}/`);
    const [answer] = await Promise.all([page.waitForResponse((r) => r.url() === `${g.origin}/.zt/grants`), page.click('#go')]);
    expect(answer.status()).toBe(403);
    await page.waitForLoadState();
    expect(await page.textContent('p.d')).toMatch(/same-site request cannot use the session cookie/);
    expect(grantsOf('alice').length).toBe(before);
    const refused = g.gw.logs.filter((l) => l.audit === true && l.path === '/.zt/grants' && l.code === 'GW_ERR_CROSS_SITE');
    expect(refused.length).toBeGreaterThanOrEqual(1);
    await page.close();
    expect(cspViolations).toEqual([]);
  });

  it('Sign out on the 403 page ends the session and reaches the IdP (form-action allows its origin)', async () => {
    const page = await open(alice);
    const denied = await page.goto(`${g.origin}/db/console`);
    expect(denied?.status()).toBe(403);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(op.issuer)), page.click('form[action="/.zt/logout"] button')]);
    expect(cspViolations).toEqual([]);
    // The gateway session is gone: the protected page sends the browser to the IdP again.
    const again = await page.goto(`${g.origin}/db/console`);
    expect(page.url().startsWith(op.issuer)).toBe(true);
    expect(again?.status()).not.toBe(403);
    await page.close();
  });
}
