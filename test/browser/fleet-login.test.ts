// One login for many apps in a real browser (Debian's Chromium via playwright-core): the gateway serves
// auth.localhost, a.localhost and b.localhost (Chromium resolves *.localhost to loopback; the gateway's
// certificate, from a test CA, names all three and Chromium trusts exactly it by its SPKI hash). The IdP
// (oidc-provider) knows ONE redirect URI, the auth host's. The browser logs in once, on a.localhost, and then
// reaches b.localhost without seeing the IdP; a logout on a.localhost (logout: fleet) ends b.localhost's session
// and the WebSocket b.localhost's page holds open.
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { describeWithChromium, launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOidcProvider, type TestOP } from '../helpers/oidc-provider.ts';
import { fleetPki, fleetRoutes, startFleetGateway, type FleetGateway } from '../helpers/fleet.ts';
import { startEchoUpstream, type EchoUpstream } from '../helpers/live.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const STEP_MS = 10_000;
const TITLE = 'one login for many apps (Chromium, auth.localhost → a.localhost, b.localhost)';

describeWithChromium(TITLE, fleetInBrowser);

function fleetInBrowser(): void {
  let op: TestOP;
  let up: Upstream;
  let echo: EchoUpstream;
  let g: FleetGateway;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  /** Every navigation request of the first page (each redirect is one), in order. */
  const visited: string[] = [];
  let idpLogins = 0;

  const atIdp = (u: URL) => u.origin === op.issuer;
  const codeGrants = () => op.tokenRequests.filter((t) => t.clientId === g.clientId && t.grantType === 'authorization_code').length;

  async function arrive(p: Page, where: string | ((u: URL) => boolean), what: string): Promise<void> {
    try {
      await p.waitForURL(where, { timeout: STEP_MS });
    } catch (err) {
      const text = await p.locator('body').innerText({ timeout: 1000 }).catch(() => '(no body)');
      throw new Error(`expected ${what}; the browser is at ${p.url()} showing:\n${text.slice(0, 800)}\n(${(err as Error).message.split('\n')[0]})`);
    }
  }

  /** The test IdP's login prompt is JSON: the "user" posts the login form to it, as its UI would. */
  async function logInAtIdp(p: Page, account: string, password: string): Promise<void> {
    await arrive(p, (u) => atIdp(u) && u.pathname.startsWith('/interaction/'), 'the IdP login prompt');
    idpLogins++;
    await p.evaluate(
      ([login, pw]) => {
        const form = document.createElement('form');
        form.method = 'POST';
        form.action = `${location.pathname}/login`;
        for (const [name, value] of [['login', login], ['password', pw]] as const) {
          const input = document.createElement('input');
          input.name = name;
          input.value = value;
          form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
      },
      [account, password] as const,
    );
  }

  beforeAll(async () => {
    const pki = await fleetPki();
    op = await startOidcProvider({ gatewayCa: pki.ca });
    up = await startUpstream();
    echo = await startEchoUpstream();
    g = await startFleetGateway(op, pki, { clientId: 'fleet-browser', routes: fleetRoutes(up.url, echo.url), login: '{ host: auth.localhost }', logLevel: 'warn' });
    browser = await launchChromium([pki.cert]);
    context = await browser.newContext();
    context.setDefaultTimeout(STEP_MS);
    context.setDefaultNavigationTimeout(STEP_MS);
    page = await context.newPage();
    page.on('request', (r) => {
      if (r.isNavigationRequest() && r.frame() === page.mainFrame()) visited.push(r.url());
    });
  }, 45_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await g?.close();
    await up?.close();
    await echo?.close();
    await op?.close();
  }, 20_000);

  it('logs in once on a.localhost through auth.localhost, then reaches b.localhost without the IdP', async () => {
    const a = `${g.origin('a.localhost')}/app/hello?from=browser`;
    await page.goto(a);
    await logInAtIdp(page, 'bob', 'bob-pw');
    await arrive(page, a, 'a.localhost after the login');
    const seenA = JSON.parse(await page.locator('body').innerText()) as { url: string; headers: Record<string, string> };
    expect(seenA.url).toBe('/app/hello?from=browser');
    expect(seenA.headers['x-zt-user']).toBe('bob');
    expect(seenA.headers.cookie).toBeUndefined();
    // The way there: app host → auth host → IdP → auth host's callback → app host's handoff → the page.
    const steps = () => visited.map((u) => new URL(u)).map((u) => (atIdp(u) ? 'IdP' : `${u.hostname}${u.pathname.startsWith('/.zt/') ? u.pathname : ''}`));
    expect(steps().filter((h, i, all) => h !== 'IdP' || all[i - 1] !== 'IdP')).toEqual([
      'a.localhost',
      'auth.localhost/.zt/login',
      'IdP',
      'auth.localhost/.zt/callback',
      'a.localhost/.zt/handoff',
      'a.localhost',
    ]);

    visited.length = 0;
    const b = `${g.origin('b.localhost')}/app/there`;
    await page.goto(b);
    await arrive(page, b, 'b.localhost, logged in');
    const seenB = JSON.parse(await page.locator('body').innerText()) as { url: string; headers: Record<string, string> };
    expect(seenB.headers['x-zt-user']).toBe('bob');
    expect(steps()).toEqual(['b.localhost', 'auth.localhost/.zt/login', 'b.localhost/.zt/handoff', 'b.localhost']); // no IdP
    expect(idpLogins).toBe(1);
    expect(codeGrants()).toBe(1);

    // Three host-only __Host- cookies named the same, one per host: none with a Domain.
    const sessions = (await context.cookies()).filter((c) => c.name === '__Host-zt');
    expect(sessions.map((c) => c.domain).sort()).toEqual(['a.localhost', 'auth.localhost', 'b.localhost']);
    for (const c of sessions) expect(c).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' });
  }, 30_000);

  it('a fleet logout on a.localhost ends b.localhost’s session and the WebSocket its page holds open', async () => {
    const bPage = await context.newPage();
    await bPage.goto(`${g.origin('b.localhost')}/live/page`);
    await bPage.evaluate(
      (url) =>
        new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(url);
          (window as unknown as { wsClosed?: number }).wsClosed = undefined;
          ws.onopen = () => resolve();
          ws.onerror = () => reject(new Error('the WebSocket did not open'));
          ws.onclose = (e) => ((window as unknown as { wsClosed?: number }).wsClosed = e.code);
        }),
      `wss://b.localhost:${g.port}/live/ws`,
    );
    await page.goto(`${g.origin('a.localhost')}/.zt/logout`);
    const since = Date.now();
    await page.click('form[action="/.zt/logout"] button[type=submit]');
    await arrive(page, (u) => atIdp(u) && u.pathname.startsWith('/session/end'), 'the IdP logout page');
    const code = await waitFor(() => bPage.evaluate(() => (window as unknown as { wsClosed?: number }).wsClosed), { timeoutMs: 2000, what: 'the WebSocket on b.localhost to close' });
    expect(code).toBe(1008);
    expect(Date.now() - since).toBeLessThan(1000); // from the click, through the POST, to the close on another host
    // Also sign out at the IdP (as it offers), so that a new login really asks the user again.
    await page.click('button[name=logout][value=yes]');
    await arrive(page, (u) => atIdp(u) && u.pathname.startsWith('/session/end/success'), 'the IdP logout confirmation');

    await bPage.goto(`${g.origin('b.localhost')}/app/again`);
    await arrive(bPage, (u) => atIdp(u) && u.pathname.startsWith('/interaction/'), 'the IdP login prompt (b.localhost’s session ended)');
  }, 30_000);
}
