// A live WebSocket in a real browser ends with the session (Debian's Chromium driven by playwright-core, the
// demo: gateway, IdP and legacy app): after the login, the page opens `new WebSocket` through the gateway and
// relays messages; the user logs out in another tab; the page's socket gets close code 1008 ("session ended")
// within 1 s of the logout request.
//
// TLS stays verified: Chromium trusts exactly the demo's localhost certificate (by its SPKI hash), nothing else.
// Without Chromium at /usr/bin/chromium the test is skipped, except with CI=true, where it fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { describeWithChromium, launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/build.ts';
import { tempDir } from '../helpers/gateway.ts';
import { waitFor } from '../helpers/wait.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const STEP_MS = 10_000;

const TITLE = 'a page’s WebSocket is closed by logout in another tab (Chromium)';
describeWithChromium(TITLE, liveLogout);

interface Demo {
  process: ChildProcess;
  url: string;
  idpOrigin: string;
  account: { login: string; password: string };
}

/** Starts the demo on free ports and reads the entry point and the printed account. */
async function startDemo(stateDir: string): Promise<Demo> {
  const child = spawn(process.execPath, [join(root, 'examples', 'demo', 'run.js')], {
    cwd: root,
    env: { ...process.env, ZT_DEMO_STATE_DIR: stateDir, ZT_DEMO_ANY_PORT: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no demo line within 25 s; stderr:\n${stderr}`)), 25_000);
    child.once('exit', (code) => reject(new Error(`demo exited (${code}) before it was ready; stderr:\n${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^zt-gateway demo: (https:\/\/localhost:\d+\/)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
  });
  await waitFor(() => stderr.includes('Ctrl-C'), { timeoutMs: 2000, intervalMs: 20, what: 'the demo hints on stderr' });
  const login = /log in:\s+(\S+) \/ (\S+)/.exec(stderr);
  const idp = /demo IdP:\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
  if (!login || !idp) throw new Error(`the demo did not print its account and IdP; stderr:\n${stderr}`);
  return { process: child, url, idpOrigin: idp[1] as string, account: { login: login[1] as string, password: login[2] as string } };
}

function liveLogout(): void {
  const stateDir = tempDir('ztgw-browser-live-');
  let demo: Demo | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    ensureBuilt(); // the demo runs the built gateway (dist/)
    demo = await startDemo(stateDir);
    const leaf = readFileSync(join(stateDir, 'localhost.crt'), 'utf8');
    browser = await launchChromium([leaf]);
    context = await browser.newContext();
    context.setDefaultTimeout(STEP_MS);
    context.setDefaultNavigationTimeout(STEP_MS);
    page = await context.newPage();
  }, 150_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    const child = demo?.process;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(stateDir, { recursive: true, force: true });
  }, 20_000);

  it('the page’s socket gets 1008 "session ended" within 1 s of a logout in another tab', async () => {
    const d = demo as Demo;
    const target = new URL('/live/page', d.url).href;
    await page.goto(target);
    await page.waitForURL((u) => u.origin === d.idpOrigin && u.pathname.startsWith('/interaction/'));
    await page.fill('#login', d.account.login);
    await page.fill('#password', d.account.password);
    await page.click('button[type=submit]');
    await page.waitForURL(target);

    // The page opens its own socket through the gateway and proves it live with one echo.
    const echoed = await page.evaluate(
      () =>
        new Promise<string>((resolve, reject) => {
          const ws = new WebSocket(`wss://${location.host}/ws`);
          const w = window as unknown as { liveClose?: { code: number; reason: string; at: number } };
          ws.addEventListener('close', (e) => (w.liveClose = { code: e.code, reason: e.reason, at: Date.now() }));
          ws.addEventListener('error', () => reject(new Error('websocket error')));
          ws.addEventListener('message', (e) => {
            if (String(e.data).startsWith('echo: ')) resolve(String(e.data));
          });
          ws.addEventListener('open', () => ws.send('from the page'));
        }),
    );
    expect(echoed).toBe('echo: from the page');

    // Another tab of the same browser logs out (POST when the gateway offers a form, else the GET link).
    const other = await context.newPage();
    const sent = { GET: 0, POST: 0 };
    other.on('request', (r) => {
      const method = r.method();
      if (new URL(r.url()).pathname === '/.zt/logout' && (method === 'GET' || method === 'POST') && sent[method] === 0) sent[method] = Date.now();
    });
    await other.goto(new URL('/.zt/logout', d.url).href);
    const form = other.locator('form[action="/.zt/logout"] button, form[action="/.zt/logout"] input[type=submit]');
    if (new URL(other.url()).pathname === '/.zt/logout' && (await form.count()) > 0) {
      await form.first().click();
      await waitFor(() => sent.POST > 0, { what: 'the logout POST' });
    }
    const loggedOutAt = sent.POST || sent.GET; // the POST of the form, or the GET that ended the session itself

    const closed = await waitFor(() => page.evaluate(() => (window as unknown as { liveClose?: { code: number; reason: string; at: number } }).liveClose), {
      timeoutMs: 1500,
      what: 'the page’s socket to be closed',
    });
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1008, reason: 'session ended' });
    expect(closed.at - loggedOutAt).toBeLessThan(1000);
  }, 40_000);
}
