// The demo as a person uses it, in a real browser (Debian's Chromium driven by playwright-core): a protected
// page sends the browser to the demo IdP, the printed demo account logs in, the browser lands back on the page
// it asked for and the app shows the X-ZT-Email it received; /admin/ asks for a multi-factor login (step-up);
// logout ends the session, and the protected page redirects to the IdP again; so does a logout at the IdP
// alone (back-channel logout).
//
// TLS stays verified: Chromium trusts exactly the demo's localhost certificate (by its SPKI hash), nothing else.
// Without Chromium at /usr/bin/chromium the test is skipped, except with CI=true, where it fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { arrive, describeWithChromium, launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tempDir } from '../helpers/gateway.ts';
import { waitFor } from '../helpers/wait.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOT = join(root, 'test-output', 'browser', 'login.png');
const STEP_MS = 10_000;

const TITLE = 'browser login to the demo (Chromium)';
describeWithChromium(TITLE, browserLogin);

function browserLogin(): void {
  const stateDir = tempDir('ztgw-browser-');
  let demo: ChildProcess | undefined;
  let stderr = '';
  let url = '';
  let idpOrigin = '';
  let account = { login: '', password: '', otp: '' };
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;

  const atIdp = (path: string) => (u: URL) => u.origin === idpOrigin && u.pathname.startsWith(path);

  beforeAll(async () => {
    demo = spawn(process.execPath, [join(root, 'examples', 'demo', 'run.js')], {
      cwd: root,
      // Free ports the OS picks: test/integration/demo.test.ts may be starting a demo on 8443 at this moment.
      env: { ...process.env, ZT_DEMO_STATE_DIR: stateDir, ZT_DEMO_ANY_PORT: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no demo line within 25 s; stderr:\n${stderr}`)), 25_000);
      demo!.once('exit', (code) => reject(new Error(`demo exited (${code}) before it was ready; stderr:\n${stderr}`)));
      createInterface({ input: demo!.stdout! }).on('line', (line) => {
        const m = /^zt-gateway demo: (https:\/\/localhost:\d+\/)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      });
    });
    await waitFor(() => stderr.includes('Ctrl-C'), { timeoutMs: 2000, intervalMs: 20, what: 'the demo hints on stderr (up to "Ctrl-C")' });
    // The account exactly as the demo prints it for a person to type.
    const login = /log in:\s+(\S+) \/ (\S+)/.exec(stderr);
    const otp = /one-time code (\d+)/.exec(stderr);
    const idp = /demo IdP:\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
    if (!login || !otp || !idp) throw new Error(`the demo did not print its account and IdP; stderr:\n${stderr}`);
    account = { login: login[1] as string, password: login[2] as string, otp: otp[1] as string };
    idpOrigin = idp[1] as string;

    const leaf = readFileSync(join(stateDir, 'localhost.crt'), 'utf8');
    browser = await launchChromium([leaf]);
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    context.setDefaultTimeout(STEP_MS);
    context.setDefaultNavigationTimeout(STEP_MS);
    page = await context.newPage();
  }, 45_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    if (demo && demo.exitCode === null && demo.signalCode === null) {
      const exited = new Promise((r) => demo!.once('exit', r));
      demo.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
    }
    rmSync(stateDir, { recursive: true, force: true });
  }, 20_000);

  const target = () => new URL('/some/page?from=browser', url).href;

  it('sends a protected page to the IdP, logs in with the printed account and comes back to that page', async () => {
    await page.goto(target());
    await arrive(page, atIdp('/interaction/'), 'the IdP login page', STEP_MS);
    await expect(page.locator('h1').innerText()).resolves.toMatch(/^Log in/);
    await page.fill('#login', account.login);
    await page.fill('#password', account.password);
    await page.click('button[type=submit]');
    // The demo IdP grants its first-party client without a consent screen; a login goes straight back.
    await arrive(page, target(), 'the protected page after the login', STEP_MS);

    const body = await page.locator('body').innerText();
    expect(body).toContain('GET /some/page?from=browser');
    expect(body).toContain('x-zt-email: alice@example.com');
    expect(body).toContain('x-zt-user: alice');
    expect(body).toContain('x-zt-groups: sales');
    expect(body).not.toContain('__Host-zt'); // the gateway's session cookie never reaches the app,
    expect(body).not.toMatch(/_session|_interaction/); // nor the IdP's (it lives on another host: 127.0.0.1)
    mkdirSync(join(root, 'test-output', 'browser'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);

    const session = (await context.cookies(url)).find((c) => c.name === '__Host-zt');
    expect(session).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' });
  }, 25_000);

  it('asks for the one-time code on the step-up route /admin/ and then lets the MFA session in', async () => {
    const admin = new URL('/admin/', url).href;
    await page.goto(admin);
    await arrive(page, atIdp('/interaction/'), 'the IdP login page', STEP_MS);
    await expect(page.locator('.note').first().innerText()).resolves.toContain('multi-factor');
    await page.fill('#login', account.login);
    await page.fill('#password', account.password);
    await page.fill('#otp', account.otp);
    await page.click('button[type=submit]');
    await arrive(page, admin, '/admin/ after the multi-factor login', STEP_MS);
    expect(await page.locator('body').innerText()).toContain('x-zt-email: alice@example.com');
  }, 25_000);

  it('logs out: the session cookie is gone and the protected page redirects to the IdP again', async () => {
    await page.goto(target());
    await arrive(page, target(), 'the protected page (still logged in)', STEP_MS);
    await page.click('#logout');
    // The link shows the gateway's confirmation page: a GET logs nobody out (an <img> on any page could).
    await arrive(page, (u) => u.pathname === '/.zt/logout', 'the gateway logout page', STEP_MS);
    expect((await context.cookies(url)).some((c) => c.name === '__Host-zt')).toBe(true);
    // Its POST form ends the session and goes on to the IdP: the page's CSP lets the form redirect there.
    await page.click('form[action="/.zt/logout"] button[type=submit]');
    await arrive(page, atIdp('/session/end'), 'the IdP logout page', STEP_MS);
    expect((await context.cookies(url)).some((c) => c.name === '__Host-zt')).toBe(false);
    // Also end the IdP's own session, as the IdP offers; otherwise it would log the browser in again at once.
    await page.click('button[name=logout][value=yes]');
    await arrive(page, atIdp('/session/end/success'), 'the IdP logout confirmation', STEP_MS);

    await page.goto(target());
    await arrive(page, atIdp('/interaction/'), 'the IdP login page', STEP_MS);
    await expect(page.locator('#login').isVisible()).resolves.toBe(true);
  }, 25_000);

  it('a logout at the IdP alone also ends the gateway session (back-channel logout)', async () => {
    await page.fill('#login', account.login); // the login page the previous test ended on
    await page.fill('#password', account.password);
    await page.click('button[type=submit]');
    await arrive(page, target(), 'the protected page after the login', STEP_MS);
    // The user signs out at the IdP, not through the gateway: the IdP POSTs a logout token to the gateway.
    await page.goto(`${idpOrigin}/session/end`);
    await page.click('button[name=logout][value=yes]');
    await arrive(page, atIdp('/session/end/success'), 'the IdP logout confirmation', STEP_MS);
    expect(readFileSync(join(stateDir, 'idp.log'), 'utf8')).toMatch(/back-channel logout of alice delivered/);
    // The browser still holds the gateway's session cookie, but the gateway no longer accepts it.
    expect((await context.cookies(url)).some((c) => c.name === '__Host-zt')).toBe(true);
    await page.goto(target());
    await arrive(page, atIdp('/interaction/'), 'the IdP login page', STEP_MS);
  }, 25_000);
}
