// Prometheus (Debian's package, unmodified, no auth of its own) behind nginx forward-auth on a NON-default
// port, in Chromium: the browser opens the graph page, logs in at the demo IdP, comes back to it, runs `up`
// from Prometheus's own UI and sees Prometheus's own series. nginx runs deploy/forward-auth/nginx.conf
// unchanged but for the two addresses; the gateway has default security headers and only this route.
// Prometheus listens on 127.0.0.1:<free port> with a temp TSDB and a config that scrapes itself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoIdp, DEMO_ACCOUNTS } from '../../examples/demo/idp.js';
import { createCA } from '../../tools/pki.ts';
import { arrive, chromiumAvailable, launchChromium, loginAtDemoIdp } from '../helpers/browser.ts';
import { root } from '../helpers/build.ts';
import { tempDir } from '../helpers/gateway.ts';
import { nginxAvailable, startNginx, type Nginx } from '../helpers/nginx.ts';
import { startOidcGateway, type OidcGateway } from '../helpers/oidc-provider.ts';
import { IN_CI } from '../helpers/redis.ts';
import { freePort, waitFor } from '../helpers/wait.ts';

const PROMETHEUS = ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => existsSync(p)) ?? 'prometheus';

function prometheusAvailable(): boolean {
  const probe = spawnSync(PROMETHEUS, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const ok = probe.error === undefined && probe.status === 0;
  if (!ok && IN_CI) throw new Error(`CI=true but prometheus cannot run: ${probe.error?.message ?? `exit ${probe.status}`} (apt-get install prometheus)`);
  return ok;
}

const available = prometheusAvailable() && nginxAvailable() && chromiumAvailable(); // each throws under CI=true when missing
if (!available && !IN_CI) console.warn('test/apps/prometheus.test.ts: prometheus, nginx or Chromium is not installed here; skipping');

const SCREENSHOT = join(root, 'test-output', 'apps', 'prometheus.png');

interface DemoIdp {
  issuer: string;
  register(c: { client_id: string; client_secret: string; origin: string; origins?: string[] }): Promise<void>;
  close(): Promise<void>;
}

let prom: ChildProcess | undefined;
let promOut = '';
let promPort = 0;
let idp: DemoIdp;
let g: OidcGateway;
let nginx: Nginx;
let browser: Browser | undefined;
let leafCert: string;

async function startPrometheus(): Promise<void> {
  const dir = tempDir('ztgw-prometheus-');
  promPort = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    `global: { scrape_interval: 1s, evaluation_interval: 5s }
scrape_configs:
  - job_name: prometheus
    static_configs: [{ targets: ['127.0.0.1:${promPort}'] }]
`,
  );
  prom = spawn(
    PROMETHEUS,
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prom.stdout?.on('data', (c: Buffer) => (promOut += c.toString('utf8')));
  prom.stderr?.on('data', (c: Buffer) => (promOut += c.toString('utf8')));
  await waitFor(
    async () => {
      if (prom?.exitCode !== null) throw new Error(`prometheus exited: ${promOut}`);
      try {
        const res = await request(`http://127.0.0.1:${promPort}/-/ready`, { headersTimeout: 1000 });
        await res.body.dump();
        return res.statusCode === 200;
      } catch {
        return false;
      }
    },
    { timeoutMs: 20_000, intervalMs: 100, what: 'prometheus to be ready' },
  );
}

describe.skipIf(!available)('Prometheus behind nginx forward-auth, in Chromium', () => {
  beforeAll(async () => {
    const ca = await createCA('prometheus app CA');
    const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    leafCert = leaf.cert;
    await startPrometheus();
    idp = (await startDemoIdp({ gatewayCa: ca.cert })) as DemoIdp;
    g = await startOidcGateway(
      { issuer: idp.issuer, addClient: (spec) => idp.register({ client_id: spec.client_id, client_secret: spec.client_secret ?? '', origin: spec.origin }) },
      { ca: ca.cert, ...leaf },
      {
        clientId: 'gw-prometheus',
        plaintext: true,
        state: 'trusted_proxies: [127.0.0.1/32]',
        routes: `  - name: prometheus
    match: { path: / }
    upstream: { url: http://127.0.0.1:${promPort} }
    authenticate: [corp]
    authorize: { allow: [{ subject: alice }] }
`,
      },
    );
    const snippet = readFileSync(join(root, 'deploy/forward-auth/nginx.conf'), 'utf8')
      .replaceAll('127.0.0.1:8443', `127.0.0.1:${g.gw.port}`)
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${promPort}`);
    nginx = await startNginx(snippet, { tls: leaf });
    // The IdP has this app host's callback registered, with its port: https://localhost:<port>/.zt/callback.
    await idp.register({ client_id: g.clientId, client_secret: g.clientSecret, origin: g.origin, origins: [nginx.url] });
    browser = await launchChromium([leafCert]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await nginx?.stop();
    await g?.close();
    await idp?.close();
    if (prom && prom.exitCode === null && prom.signalCode === null) {
      const gone = once(prom, 'exit');
      prom.kill('SIGTERM');
      const timer = setTimeout(() => prom?.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
  }, 30_000);

  it('logs in, opens the graph page, runs `up` from the UI and sees the result', async () => {
    expect(nginx.port).not.toBe(443);
    const context = await browser!.newContext({ viewport: { width: 1200, height: 800 } });
    context.setDefaultTimeout(10_000);
    const page: Page = await context.newPage();
    const failed: string[] = [];
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(`${nginx.url}/graph`);
    const alice = DEMO_ACCOUNTS.alice as { password: string };
    await loginAtDemoIdp(page, idp.issuer, 'alice', alice.password);
    // Back on the app's host and port; Prometheus (Debian's classic UI) sends /graph on to /classic/graph.
    await arrive(page, (u) => u.origin === nginx.url && u.pathname.endsWith('/graph'), "Prometheus's graph page");
    const input = page.locator('textarea.expression_input').first();
    await input.waitFor({ state: 'visible' });

    // Prometheus scrapes itself every second: run the query until its own `up` series is there.
    const series = page.locator('table.console_table tr', { hasText: 'job="prometheus"' });
    await waitFor(
      async () => {
        await input.fill('up');
        await page.locator('input.execute_btn').first().click();
        return (await series.count().catch(() => 0)) > 0 || (await page.waitForTimeout(500), false);
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'the `up` series in the console table' },
    );
    const row = await series.first().innerText();
    expect(row).toContain(`instance="127.0.0.1:${promPort}"`);
    expect(row).toMatch(/\b1\s*$/);
    mkdirSync(join(root, 'test-output', 'apps'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    // Every request of the page (HTML, scripts, the query API) passed the gateway's check.
    expect(failed).toEqual([]);
    const decisions = g.gw.logs.filter((l) => l.msg === 'decision' && l.forward_auth === true && l.decision === 'allow' && l.subject === 'alice');
    expect(decisions.some((l) => String(l.path).startsWith('/api/v1/query'))).toBe(true);
    await context.close();
  }, 90_000);
});
