// Node-RED, unmodified (npm node-red 5.0.7, no auth of its own, on 127.0.0.1), behind the gateway in Chromium:
// the user logs in at the IdP, the editor's palette loads (its node definitions are inline <script>s: the
// default CSP is report-only, so nothing is blocked), the comms WebSocket connects, a flow deployed through the
// admin HTTP API (POST /flows, with the session) serves an HTTP endpoint that answers with the identity the
// gateway sent (and not the one a client claims), and logout closes the comms socket (1008 "session ended").
// Gateway config: the default security headers and nothing else (README "Putting a real app behind it").
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tempDir } from '../helpers/gateway.ts';
import { freePort, waitFor } from '../helpers/wait.ts';
import { ALICE, CHROMIUM, describeApp, ensureNodeRed, launchChromium, NODE_RED_BIN, SCREENSHOTS, startAppGateway, STEP_MS, type AppGateway } from './support.ts';

const missing = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM}: .ci/run installs it as root (apt-get install chromium)`
  : ensureNodeRed();

interface SocketRecord {
  url: string;
  opened: number;
  closed?: { code: number; reason: string; at: number };
}
type Recorded = { __ztSockets?: SocketRecord[] };

/** Runs in the page before Node-RED's scripts: records every WebSocket's open and close (code, reason, time). */
function recordSockets(): void {
  const Native = window.WebSocket;
  const list: SocketRecord[] = [];
  (window as unknown as Recorded).__ztSockets = list;
  window.WebSocket = class extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      const rec: SocketRecord = { url: String(url), opened: 0 };
      list.push(rec);
      this.addEventListener('open', () => (rec.opened = Date.now()));
      this.addEventListener('close', (e) => (rec.closed = { code: e.code, reason: e.reason, at: Date.now() }));
    }
  } as typeof WebSocket;
}

/** An `http in` → `function` (echo the X-ZT-* headers it received) → `http response` flow on GET /whoami. */
const FLOW = [
  { id: 'zt-tab', type: 'tab', label: 'zt-gateway identity' },
  { id: 'zt-in', type: 'http in', z: 'zt-tab', name: 'GET /whoami', url: '/whoami', method: 'get', upload: false, x: 140, y: 80, wires: [['zt-fn']] },
  {
    id: 'zt-fn',
    type: 'function',
    z: 'zt-tab',
    name: 'echo X-ZT-*',
    func: "const seen = {};\nfor (const [k, v] of Object.entries(msg.req.headers)) if (k.startsWith('x-zt-') || k === 'x-remote-user') seen[k] = v;\nmsg.payload = seen;\nreturn msg;",
    outputs: 1,
    x: 340,
    y: 80,
    wires: [['zt-out']],
  },
  { id: 'zt-out', type: 'http response', z: 'zt-tab', name: '', statusCode: '', headers: {}, x: 530, y: 80, wires: [] },
];

describeApp('Node-RED behind the gateway (Chromium)', missing, () => {
  const userDir = tempDir('ztgw-node-red-');
  let nodeRed: ChildProcess | undefined;
  let nodeRedLog = '';
  let app: AppGateway;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    const port = await freePort();
    // No adminAuth (the gateway is the only way in), loopback only, nothing phoned home, no projects.
    writeFileSync(
      join(userDir, 'settings.js'),
      `module.exports = {
  uiHost: '127.0.0.1',
  uiPort: ${port},
  flowFile: 'flows.json',
  credentialSecret: false,
  diagnostics: { enabled: false, ui: false },
  telemetry: { enabled: false, updateNotification: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
  editorTheme: { projects: { enabled: false }, tours: false, palette: { catalogues: [] } },
  logging: { console: { level: 'warn', metrics: false, audit: false } },
};
`,
    );
    nodeRed = spawn(process.execPath, [NODE_RED_BIN, '--userDir', userDir, '--settings', join(userDir, 'settings.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [nodeRed.stdout, nodeRed.stderr]) s?.on('data', (c: Buffer) => (nodeRedLog += c.toString('utf8')));
    await waitFor(
      async () => {
        if (nodeRed?.exitCode !== null) throw new Error(`Node-RED exited (${nodeRed?.exitCode}):\n${nodeRedLog}`);
        return fetch(`http://127.0.0.1:${port}/settings`).then((r) => r.ok, () => false);
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'Node-RED to answer /settings' },
    );

    app = await startAppGateway({
      routes: `  - name: node-red
    match: { path: / }
    upstream: { url: "http://127.0.0.1:${port}" }
    authenticate: [idp]
    authorize:
      allow:
        - { name: signed-in, authenticated: true }
`,
    });
    browser = await launchChromium(app.cert);
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(STEP_MS);
    context.setDefaultNavigationTimeout(STEP_MS);
    await context.addInitScript(recordSockets);
    page = await context.newPage();
  }, 90_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await app?.close();
    if (nodeRed && nodeRed.exitCode === null && nodeRed.signalCode === null) {
      const exited = new Promise((r) => nodeRed!.once('exit', r));
      nodeRed.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (nodeRed.exitCode === null && nodeRed.signalCode === null) nodeRed.kill('SIGKILL');
    }
    rmSync(userDir, { recursive: true, force: true });
  }, 30_000);

  const sockets = () => page.evaluate(() => (window as unknown as Recorded).__ztSockets ?? []);
  const liveComms = async () => (await sockets()).find((s) => new URL(s.url).pathname === '/comms' && s.opened > 0 && !s.closed);

  it('logs in at the IdP, loads the editor with a full palette and connects the comms WebSocket', async () => {
    const cspReports: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspReports.push(m.text());
    });
    const editor = `${app.origin}/`;
    await page.goto(editor);
    await page.waitForURL((u) => u.origin === app.idpOrigin && u.pathname.startsWith('/interaction/'));
    await page.fill('#login', ALICE.login);
    await page.fill('#password', ALICE.password);
    await page.click('button[type=submit]');
    await page.waitForURL(editor);

    // The palette is built from the inline <script type="text/javascript"> node definitions of GET /nodes.
    await waitFor(async () => (await page.locator('#red-ui-palette .red-ui-palette-node').count()) > 20, { timeoutMs: 2 * STEP_MS, intervalMs: 200, what: 'the palette to fill' });
    for (const type of ['inject', 'debug', 'function', 'http in', 'http response']) {
      await expect(page.locator(`#red-ui-palette .red-ui-palette-node[data-palette-type="${type}"]`).count()).resolves.toBe(1);
    }
    const comms = await waitFor(liveComms, { timeoutMs: STEP_MS, intervalMs: 100, what: 'the comms WebSocket to open' });
    expect(comms.url).toBe(`wss://localhost:${app.gw.port}/comms`);
    // The default policy, report-only: the browser reports the inline scripts it would have blocked and blocks nothing.
    const csp = await page.evaluate(async () => {
      const r = await fetch('/');
      return { enforced: r.headers.get('content-security-policy'), reportOnly: r.headers.get('content-security-policy-report-only') };
    });
    expect(csp.enforced).toBeNull();
    expect(csp.reportOnly).toContain("script-src 'self'");
    expect(cspReports.length).toBeGreaterThan(0);
    expect(cspReports.filter((t) => !/report.only/i.test(t))).toEqual([]);
  }, 60_000);

  it('deploys a flow through the admin HTTP API and its endpoint answers with the identity the gateway sent', async () => {
    const deployed = await page.evaluate(async (flow) => {
      const r = await fetch('/flows', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
        body: JSON.stringify(flow),
      });
      return { status: r.status, body: await r.text() };
    }, FLOW);
    expect(deployed).toEqual({ status: 204, body: '' }); // API v1: a full deployment, no content

    const whoami = async (headers: Record<string, string>) =>
      page.evaluate(async (h) => {
        const r = await fetch('/whoami', { headers: h });
        return { status: r.status, body: (await r.json()) as Record<string, string> };
      }, headers);
    await waitFor(async () => (await whoami({})).status === 200, { timeoutMs: 5000, intervalMs: 100, what: 'the deployed flow to serve /whoami' });

    const honest = await whoami({});
    expect(honest.status).toBe(200);
    const { 'x-zt-assertion': assertion, ...identity } = honest.body;
    expect(identity).toEqual({ 'x-zt-user': 'alice', 'x-zt-email': ALICE.email, 'x-zt-groups': ALICE.groups.join(','), 'x-zt-auth-method': 'session' });
    expect(assertion).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);

    // A client's own identity headers never reach the app: the same identity comes back.
    const claimed = await whoami({ 'X-ZT-User': 'mallory', 'X-ZT-Groups': 'admins', 'X-ZT-Email': 'mallory@evil.example' });
    const { 'x-zt-assertion': _a, ...claimedIdentity } = claimed.body;
    expect(claimedIdentity).toEqual(identity);

    // The editor shows the deployed flow.
    await page.reload();
    await waitFor(async () => (await page.locator('#red-ui-workspace-chart .red-ui-flow-node-group').count()) >= 3, { timeoutMs: 2 * STEP_MS, intervalMs: 200, what: 'the flow on the canvas' });
    await waitFor(liveComms, { timeoutMs: STEP_MS, intervalMs: 100, what: 'the comms WebSocket to open again' });
    await page.screenshot({ path: join(SCREENSHOTS, 'node-red.png') });
  }, 60_000);

  it('logout (in another tab) closes the editor’s comms WebSocket with 1008 "session ended"', async () => {
    const comms = await waitFor(liveComms, { timeoutMs: STEP_MS, intervalMs: 100, what: 'a live comms WebSocket' });
    const other = await context.newPage();
    let loggedOutAt = 0;
    other.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/.zt/logout' && loggedOutAt === 0) loggedOutAt = Date.now();
    });
    await other.goto(`${app.origin}/.zt/logout`);
    const button = other.locator('form[action="/.zt/logout"] button, form[action="/.zt/logout"] input[type=submit]');
    await button.first().click();
    await waitFor(() => loggedOutAt > 0, { what: 'the logout POST' });

    const closed = await waitFor(async () => (await sockets()).find((s) => s.url === comms.url && s.opened === comms.opened)?.closed, {
      timeoutMs: 5000,
      intervalMs: 50,
      what: 'the comms socket to be closed by the gateway',
    });
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1008, reason: 'session ended' });
    expect(closed.at - loggedOutAt).toBeLessThan(2000);

    // Node-RED's editor reconnects on its own: no new comms socket opens without a session, and the admin API refuses.
    const after = await page.evaluate(async () => (await fetch('/flows', { redirect: 'manual' })).status);
    expect(after).toBe(401); // a script's request: 401, not a redirect to the IdP
    await new Promise((r) => setTimeout(r, 1500));
    expect((await sockets()).filter((s) => new URL(s.url).pathname === '/comms' && s.opened > closed.at)).toEqual([]);
  }, 30_000);
});
