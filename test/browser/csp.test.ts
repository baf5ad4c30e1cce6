// The report-only → `csp suggest` → enforce path in a real browser (Debian's Chromium via playwright-core):
// a page with an inline script, relayed by the gateway under its default (report-only) policy, still runs, and
// Chromium's own report reaches /.zt/csp-report/<token>: the aggregate, the metric, the admin API and
// `csp suggest` show it. With `learn: true` the gateway hashes the page's inline script as it relays it; the
// suggested 'sha256-…' is the script's, and with the suggestion pasted under the route and report_only: false
// the script runs, while the same policy without the hash blocks it.
// Chromium sends its reports with the Reporting API (application/reports+json to the Reporting-Endpoints URL;
// it ignores report-uri when report-to names an endpoint); --short-reporting-delay makes it deliver them at
// once instead of batching them for a minute. It trusts exactly the test's localhost certificate (by SPKI hash).
// Without Chromium at /usr/bin/chromium the test is skipped, except with CI=true, where it fails.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { type Browser, type BrowserContext } from 'playwright-core';
import { describeWithChromium, launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { admin, ADMIN_TOKEN, ADMIN_TOKEN_HASH } from '../helpers/access.ts';
import { ensureBuilt } from '../helpers/build.ts';
import { cli } from '../helpers/cli.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { scrape } from '../helpers/metrics.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const TITLE = 'CSP reports from a real browser, csp suggest, and the enforced policy (Chromium)';
describeWithChromium(TITLE, cspInBrowser);


const SCRIPT = "document.documentElement.dataset.ran = 'yes';";
const PAGE = `<!doctype html><html><head><title>csp</title><script>${SCRIPT}</script></head><body><p>legacy page</p></body></html>`;
const SCRIPT_HASH = `'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`;

const routes = (upstream: string, learned = '    security_headers: { csp: { learn: true } }\n', extra = '') => `routes:
  - name: app
    match: { path: /app }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
  - name: learned
    match: { path: /learned }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
${learned}${extra}`;

const CONFIG = (upstream: string, routesYaml: string) => `listen: { address: 127.0.0.1:0, tls: { cert: gw.crt, key: gw.key } }
shutdown: { drain_timeout: 1s }
admin: { listen: 127.0.0.1:0, token_hash: "${ADMIN_TOKEN_HASH}" }
${routesYaml}`;

interface RouteView {
  route: string;
  violations: Array<{ directive: string; blocked: string; count: number; clients: number; sample_path: string }>;
  learned: { 'script-src': string[] };
}

function cspInBrowser(): void {
  let upstream: Upstream;
  let gw: TestGateway;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let origin = '';

  beforeAll(async () => {
    ensureBuilt();
    upstream = await startUpstream((req, res) => {
      if (!req.url?.endsWith('/page') && !req.url?.includes('/page?')) return false;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return true;
    });
    const ca = await createCA('browser csp CA');
    const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    gw = await startGateway(CONFIG(upstream.url, routes(upstream.url)), { files: { 'gw.crt': leaf.cert, 'gw.key': leaf.key } });
    origin = `https://localhost:${gw.port}`;
    browser = await launchChromium([leaf.cert], ['--short-reporting-delay']);
    context = await browser.newContext();
    context.setDefaultTimeout(10_000);
  }, 180_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await gw?.close();
    await upstream?.close();
  }, 20_000);

  const route = async (name: string): Promise<RouteView | undefined> => {
    const a = await admin(gw, 'GET', `/admin/v1/csp-violations?route=${name}`);
    expect(a.status).toBe(200);
    return (a.body as { routes: RouteView[] }).routes[0];
  };

  /** Loads a page; returns whether its inline script ran and the violations the page saw (securitypolicyviolation). */
  async function load(path: string): Promise<{ ran: string | undefined; violations: string[] }> {
    const page = await context.newPage();
    // An init script runs outside the page's CSP: it records each violation event as "disposition directive blocked".
    await page.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { __csp: string[] }).__csp = seen;
      document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.disposition} ${e.effectiveDirective} ${e.blockedURI}`));
    });
    const res = await page.goto(`${origin}${path}`);
    expect(res?.status()).toBe(200);
    const ran = await page.evaluate(() => document.documentElement.dataset.ran);
    const violations = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
    await page.close();
    return { ran, violations };
  }

  it('report-only: the inline script runs, and Chromium reports it to the gateway (aggregate, metric, admin API)', async () => {
    const before = upstream.received.length;
    const { ran, violations } = await load('/app/page?secret=1');
    expect(ran).toBe('yes');
    expect(violations).toEqual(['report script-src-elem inline']);
    await waitFor(async () => ((await route('app'))?.violations.length ?? 0) > 0, { timeoutMs: 10_000, intervalMs: 100, what: 'the browser report' });
    const app = (await route('app'))!;
    expect(app.violations).toEqual([
      { directive: 'script-src-elem', blocked: "'inline'", count: 1, clients: 1, sample_path: '/app/page', first_seen: expect.any(String), last_seen: expect.any(String) },
    ]);
    const m = await scrape(gw.gateway.adminUrl as string, ADMIN_TOKEN);
    expect(m.value('zt_csp_violations_total', { route: 'app', directive: 'script-src-elem' })).toBe(1);
    // The page went upstream; the report did not.
    expect(upstream.received.slice(before).map((r) => r.url)).toEqual(['/app/page?secret=1']);
  });

  it("csp suggest: 'unsafe-inline' with a warning for a route that does not learn", async () => {
    const r = await cli(['csp', 'suggest', '--route', 'app', '--admin-url', gw.gateway.adminUrl as string], 30_000, { ZT_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("#         1       1  script-src-elem    'inline' → script-src 'unsafe-inline'\n");
    expect(r.stdout).toContain('# warning: script-src-elem: \'unsafe-inline\' allows any injected inline code. Set security_headers.csp.learn: true on route "app"');
    expect(r.stdout).toContain(`      script-src: ["'self'", "'unsafe-inline'"]\n`);
  });

  it('learn: true → the suggested sha256 is the script\'s; pasted and enforced, the script runs; without it, it is blocked', async () => {
    const { ran } = await load('/learned/page');
    expect(ran).toBe('yes');
    await waitFor(async () => {
      const v = await route('learned');
      return (v?.violations.length ?? 0) > 0 && (v?.learned['script-src'].length ?? 0) > 0;
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'the report and the learned hash' });
    expect((await route('learned'))!.learned['script-src']).toEqual([SCRIPT_HASH]);

    const r = await cli(['csp', 'suggest', '--route', 'learned', '--admin-url', gw.gateway.adminUrl as string, '--token', ADMIN_TOKEN]);
    expect(r.code).toBe(0);
    const yaml = r.stdout;
    expect(yaml).not.toContain('warning');
    expect(yaml.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'security_headers:',
      '  csp:',
      '    learn: true',
      '    # report_only: false   # enforce once this policy draws no new reports',
      '    directives:',
      `      script-src: ["'self'", "${SCRIPT_HASH}"]`,
      '',
    ]);

    // Paste it under the route, enforce, reload; a control route enforces the default policy.
    const pasted = yaml.replace('# report_only: false', 'report_only: false').split('\n').map((l) => `    ${l}`).join('\n');
    const control = `  - name: strict
    match: { path: /strict }
    upstream: { url: ${upstream.url}, timeout: 2s }
    public: true
    security_headers: { csp: { report_only: false } }
`;
    writeFileSync(gw.configFile, CONFIG(upstream.url, routes(upstream.url, `${pasted}\n`, control)));
    expect(await gw.gateway.reload()).toBe(true);
    expect(readFileSync(gw.configFile, 'utf8')).toContain('report_only: false');

    const enforced = await load('/learned/page');
    expect(enforced.ran).toBe('yes');
    expect(enforced.violations).toEqual([]);
    const blocked = await load('/strict/page');
    expect(blocked.ran).toBeUndefined();
    expect(blocked.violations).toEqual(['enforce script-src-elem inline']);
    await waitFor(async () => ((await route('strict'))?.violations.length ?? 0) > 0, { timeoutMs: 10_000, intervalMs: 100, what: 'the enforced policy\'s report' });
  });
}
