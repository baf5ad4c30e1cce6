// Radicale, unmodified (Debian's radicale 3.1.8, `[auth] type = http_x_remote_user`, on 127.0.0.1), behind the
// gateway, which sends the verified user as `X-Remote-User` (route `identity_headers: { user: X-Remote-User }`).
// A CalDAV client with an API key, and the browser session of a user who logged in at the IdP in Chromium,
// PROPFIND, MKCALENDAR, PUT and GET as that user. A client's own X-Remote-User, in every spelling a CGI/WSGI
// server folds into HTTP_X_REMOTE_USER (case, `_`, duplicates, Connection-listed, padded, leading/trailing `_`),
// on the authenticated route and on a public one, never reaches Radicale: proven by what Radicale itself saw
// (its debug log prints each request's WSGI environ) and stored (collections under the real user only).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashKey } from '../../src/authn/api-key.ts';
import { tempDir } from '../helpers/gateway.ts';
import { rawRequest, type RawResponse } from '../helpers/raw.ts';
import { freePort, waitFor } from '../helpers/wait.ts';
import { ALICE, CHROMIUM, describeApp, launchChromium, SCREENSHOTS, startAppGateway, STEP_MS, type AppGateway } from './support.ts';

const RADICALE = '/usr/bin/radicale';
const missing = !existsSync(RADICALE)
  ? `no Radicale at ${RADICALE}: .ci/run installs it as root (apt-get install radicale)`
  : !existsSync(CHROMIUM)
    ? `no Chromium at ${CHROMIUM}: .ci/run installs it as root (apt-get install chromium)`
    : undefined;

/** An API key for the CalDAV client, subject alice (the IdP's `sub` for the same person). */
const DAV_KEY = 'ztk_apps_radicale_alice_0123456789abcdef';

/** One request as Radicale saw it: its WSGI environ, from Radicale's debug log. */
interface Seen {
  method: string;
  path: string;
  probe: string | undefined;
  /** Every environ key that a WSGI app could read a remote user from, with its value. */
  remoteUser: Record<string, string>;
}

/** The "Request headers:" blocks of Radicale's debug log (a pprint of the WSGI environ, one key per line). */
function parseSeen(log: string): Seen[] {
  const out: Seen[] = [];
  for (const block of log.split('[DEBUG] Request headers:\n').slice(1)) {
    const env: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const m = /^[{ ]'([A-Za-z0-9_.]+)': '((?:[^'\\]|\\.)*)'[,}]?$/.exec(line);
      if (m) env[m[1] as string] = m[2] as string;
      if (line.endsWith('}')) break;
    }
    const remoteUser = Object.fromEntries(Object.entries(env).filter(([k]) => /REMOTE.?USER/i.test(k)));
    out.push({ method: env.REQUEST_METHOD ?? '', path: env.PATH_INFO ?? '', probe: env.HTTP_X_PROBE, remoteUser });
  }
  return out;
}

const EVENT = `BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//zt-gateway//apps test//EN\r
BEGIN:VEVENT\r
UID:zt-apps-1@example.com\r
DTSTAMP:20260101T090000Z\r
DTSTART:20260105T100000Z\r
DTEND:20260105T110000Z\r
SUMMARY:Review behind the gateway\r
END:VEVENT\r
END:VCALENDAR\r
`;

describeApp('Radicale behind the gateway (X-Remote-User)', missing, () => {
  const dir = tempDir('ztgw-radicale-');
  const collections = join(dir, 'collections');
  let radicale: ChildProcess | undefined;
  let radicaleLog = '';
  let app: AppGateway;
  let browser: Browser | undefined;
  let page: Page;

  beforeAll(async () => {
    const port = await freePort();
    radicalePort = port;
    writeFileSync(
      join(dir, 'config'),
      `[server]
hosts = 127.0.0.1:${port}
[auth]
type = http_x_remote_user
[rights]
type = owner_only
[storage]
filesystem_folder = ${collections}
[web]
type = none
[logging]
level = debug
mask_passwords = True
`,
    );
    radicale = spawn(RADICALE, ['--config', join(dir, 'config')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dir } });
    for (const s of [radicale.stdout, radicale.stderr]) s?.on('data', (c: Buffer) => (radicaleLog += c.toString('utf8')));
    await waitFor(
      () => {
        if (radicale?.exitCode !== null) throw new Error(`Radicale exited (${radicale?.exitCode}):\n${radicaleLog}`);
        return radicaleLog.includes('Radicale server ready');
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'Radicale to be ready' },
    );

    app = await startAppGateway({
      providers: '  dav-keys: { type: api_key, keys_file: keys.yaml }',
      files: { 'keys.yaml': `keys:\n  - { id: alice-dav, hash: ${hashKey(DAV_KEY)}, subject: alice }\n` },
      routes: `  - name: radicale-discovery
    match: { path: /.well-known }
    upstream: { url: "http://127.0.0.1:${port}" }
    public: true
  - name: radicale
    match: { path: / }
    upstream: { url: "http://127.0.0.1:${port}" }
    authenticate: [dav-keys, idp]
    identity_headers: { user: X-Remote-User }
    authorize:
      allow:
        - { name: signed-in, authenticated: true }
`,
    });
    browser = await launchChromium(app.cert);
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    context.setDefaultTimeout(STEP_MS);
    context.setDefaultNavigationTimeout(STEP_MS);
    page = await context.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await app?.close();
    if (radicale && radicale.exitCode === null && radicale.signalCode === null) {
      const exited = new Promise((r) => radicale!.once('exit', r));
      radicale.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (radicale.exitCode === null && radicale.signalCode === null) radicale.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }, 20_000);

  /** One raw HTTP/1.1 request to the gateway (TLS, the test CA): `headers` are sent verbatim, one per line. */
  function raw(method: string, path: string, headers: string[], body = ''): Promise<RawResponse> {
    const head = [`${method} ${path} HTTP/1.1`, `Host: localhost:${app.gw.port}`, ...headers, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
    return rawRequest(app.gw.port, `${head.join('\r\n')}\r\n\r\n${body}`, { tls: { ca: app.ca }, timeoutMs: 5000 });
  }
  const dav = (method: string, path: string, headers: string[] = [], body = '') => raw(method, path, [`Authorization: ApiKey ${DAV_KEY}`, ...headers], body);
  let radicalePort = 0;
  let markers = 0;
  /**
   * Radicale's view of the requests tagged `X-Probe: probe`, once its log is read up to now: a marker request
   * sent straight to Radicale (after the request under test was answered) must show in the log first.
   */
  async function seen(probe: string): Promise<Seen[]> {
    const marker = `marker-${++markers}`;
    const r = await fetch(`http://127.0.0.1:${radicalePort}/.well-known/caldav`, { headers: { 'X-Probe': marker }, redirect: 'manual' });
    expect(r.status).toBe(301);
    await waitFor(() => parseSeen(radicaleLog).some((s) => s.probe === marker), { timeoutMs: 5000, what: `Radicale's log of ${marker}` });
    return parseSeen(radicaleLog).filter((s) => s.probe === probe);
  }

  it('a CalDAV client with an API key: PROPFIND, MKCALENDAR, PUT and GET of an event as alice', async () => {
    const propfind = await dav('PROPFIND', '/alice/', ['Depth: 0', 'X-Probe: dav-propfind', 'Content-Type: application/xml'], '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>');
    expect(propfind.status).toBe(207);
    expect(propfind.body).toContain('<current-user-principal><href>/alice/</href></current-user-principal>');

    expect((await dav('MKCALENDAR', '/alice/work/', ['X-Probe: dav-mkcalendar'])).status).toBe(201);
    const put = await dav('PUT', '/alice/work/review.ics', ['Content-Type: text/calendar; charset=utf-8', 'X-Probe: dav-put'], EVENT);
    expect(put.status).toBe(201);
    const get = await dav('GET', '/alice/work/review.ics', ['X-Probe: dav-get']);
    expect(get.status).toBe(200);
    expect(get.body).toContain('SUMMARY:Review behind the gateway');

    // What Radicale received, and what it stored: the user is alice, from the gateway.
    for (const probe of ['dav-propfind', 'dav-mkcalendar', 'dav-put', 'dav-get']) {
      expect((await seen(probe)).map((s) => s.remoteUser)).toEqual([{ HTTP_X_REMOTE_USER: 'alice' }]);
    }
    expect(readFileSync(join(collections, 'collection-root', 'alice', 'work', 'review.ics'), 'utf8')).toContain('UID:zt-apps-1@example.com');
  }, 30_000);

  it('the browser session of a user who logged in at the IdP: PROPFIND and PUT from the page', async () => {
    const home = `${app.origin}/alice/`;
    await page.goto(home);
    await page.waitForURL((u) => u.origin === app.idpOrigin && u.pathname.startsWith('/interaction/'));
    await page.fill('#login', ALICE.login);
    await page.fill('#password', ALICE.password);
    await page.click('button[type=submit]');
    await page.waitForURL(home);

    const results = await page.evaluate(async (ics) => {
      const propfind = await fetch('/alice/work/', { method: 'PROPFIND', headers: { Depth: '1', 'X-Probe': 'session-propfind' } });
      const put = await fetch('/alice/work/from-browser.ics', {
        method: 'PUT',
        headers: { 'Content-Type': 'text/calendar', 'X-Probe': 'session-put' },
        body: ics.replace('zt-apps-1@', 'zt-apps-2@'),
      });
      return { propfind: { status: propfind.status, body: await propfind.text() }, put: put.status };
    }, EVENT);
    expect(results.propfind.status).toBe(207);
    expect(results.propfind.body).toContain('<href>/alice/work/review.ics</href>');
    expect(results.put).toBe(201);
    expect((await seen('session-propfind')).map((s) => s.remoteUser)).toEqual([{ HTTP_X_REMOTE_USER: 'alice' }]);
    expect((await seen('session-put')).map((s) => s.remoteUser)).toEqual([{ HTTP_X_REMOTE_USER: 'alice' }]);
    expect(readdirSync(join(collections, 'collection-root', 'alice', 'work')).filter((f) => f.endsWith('.ics')).sort()).toEqual(['from-browser.ics', 'review.ics']);
    // Radicale has no web UI here ([web] type = none): the screenshot shows its PROPFIND answer as the page got it.
    await page.evaluate((xml) => {
      document.body.innerHTML = '';
      const h = document.createElement('h3');
      h.textContent = 'PROPFIND /alice/work/ (Depth: 1) through zt-gateway, as Radicale answered the logged-in user';
      const pre = document.createElement('pre');
      pre.style.cssText = 'white-space: pre-wrap; word-break: break-all; font-size: 12px';
      pre.textContent = xml;
      document.body.append(h, pre);
    }, results.propfind.body);
    await page.screenshot({ path: join(SCREENSHOTS, 'radicale.png') });
  }, 40_000);

  /** Client-sent remote-user claims: each spelling a CGI/WSGI server (Radicale's wsgiref) maps to HTTP_X_REMOTE_USER, or nearly. */
  const SPELLINGS: Record<string, string[]> = {
    canonical: ['X-Remote-User: bob'],
    'lower case': ['x-remote-user: bob'],
    'upper case': ['X-REMOTE-USER: bob'],
    'mixed case': ['x-ReMoTe-uSeR: bob'],
    underscores: ['X_Remote_User: bob'],
    'lower underscores': ['x_remote_user: bob'],
    'mixed - and _': ['X-Remote_User: bob'],
    'leading _': ['_X_Remote_User: bob'],
    'trailing _': ['X-Remote-User_: bob'],
    'padded value': ['X-Remote-User:    bob   '],
    duplicated: ['X-Remote-User: bob', 'X-Remote-User: alice'],
    'duplicated, two spellings': ['X-Remote-User: bob', 'X_REMOTE_USER: carol'],
    'Connection-listed': ['Connection: X-Remote-User', 'X-Remote-User: bob'],
    'Connection-listed, _ spelling': ['Connection: keep-alive, X_Remote_User', 'X_Remote_User: bob'],
    'empty value': ['X-Remote-User:'],
  };

  it('a client’s own X-Remote-User, in every spelling, never reaches Radicale (authenticated route)', async () => {
    for (const [name, headers] of Object.entries(SPELLINGS)) {
      const probe = `spoof-${name.replace(/[^a-z]+/g, '-')}`;
      // As alice (API key), claiming bob: bob's home must not be created, alice's PROPFIND stays alice's.
      const r = await dav('PROPFIND', '/bob/', ['Depth: 0', `X-Probe: ${probe}`, ...headers]);
      expect({ name, status: r.status }).toEqual({ name, status: 403 }); // Radicale: alice may not read /bob/
      expect({ name, seen: (await seen(probe)).map((s) => s.remoteUser) }).toEqual({ name, seen: [{ HTTP_X_REMOTE_USER: 'alice' }] });
      // Without credentials the gateway answers 401 and Radicale sees nothing.
      const anon = await raw('PROPFIND', '/bob/', ['Depth: 0', `X-Probe: ${probe}-anon`, ...headers]);
      expect({ name, status: anon.status }).toEqual({ name, status: 401 });
      expect(await seen(`${probe}-anon`)).toEqual([]);
    }
  }, 60_000);

  it('…nor through a public route to the same Radicale, and a malformed name is refused before it', async () => {
    for (const [name, headers] of Object.entries(SPELLINGS)) {
      const probe = `public-${name.replace(/[^a-z]+/g, '-')}`;
      const r = await raw('GET', '/.well-known/caldav', [`X-Probe: ${probe}`, ...headers]);
      expect({ name, status: r.status }).toEqual({ name, status: 301 }); // Radicale's redirect to /
      expect({ name, seen: (await seen(probe)).map((s) => s.remoteUser) }).toEqual({ name, seen: [{}] });
    }
    // Whitespace before the colon and obs-fold: the HTTP parser refuses the request (400), nothing is forwarded.
    for (const [name, headers] of Object.entries({ 'space before colon': ['X-Remote-User : bob'], 'obs-fold': ['X-Note: a', ' X-Remote-User: bob'] })) {
      const probe = `malformed-${name.replace(/[^a-z]+/g, '-')}`;
      const r = await dav('PROPFIND', '/bob/', ['Depth: 0', `X-Probe: ${probe}`, ...headers]);
      expect({ name, status: r.status }).toEqual({ name, status: 400 });
      expect(await seen(probe)).toEqual([]);
    }

    // Radicale's own account of every login, and its storage: alice only (anonymous on the public route).
    const logins = new Set([...radicaleLog.matchAll(/Successful login: '([^']*)'/g)].map((m) => m[1]));
    expect([...logins]).toEqual(['alice']);
    expect(readdirSync(join(collections, 'collection-root')).sort()).toEqual(['alice']);
  }, 60_000);
});
