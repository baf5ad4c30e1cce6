// `zt-gateway audit-config` as an operator runs it (node bin/zt-gateway.js on the built dist/): the shipped good
// and bad example configs, --strict, --json, and --metrics-url against a real loopback HTTP server.
import { createServer, type Server } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINDINGS, TENETS } from '../../src/cli/posture/catalog.ts';
import { tempDir } from '../helpers/gateway.ts';
import { ensureBuilt } from '../helpers/build.ts';
import { cli, type CliResult as Result } from '../helpers/cli.ts';

interface JsonFinding {
  id: string;
  severity: string;
  tenets: number[];
  path: string;
  line?: number;
  route?: string;
  provider?: string;
  message: string;
  fix: string;
}
interface JsonReport {
  config: string;
  routes: number;
  summary: Record<string, number>;
  findings: JsonFinding[];
  tenets: { tenet: number; name: string; score: number; stage: string; findings: string[] }[];
  maturity: { score: number; stage: string; method: string };
  metrics?: Record<string, unknown>;
}

const GOOD = 'config/examples/posture-good.yaml';
const BAD = 'config/examples/posture-bad.yaml';
const HIGH_IDS = ['route-report-only', 'upstream-plaintext', 'cors-insecure-origin', 'jwt-audience-unbound', 'session-ttl-long'];

beforeAll(() => ensureBuilt(), 180_000);

async function jsonReport(args: string[]): Promise<{ result: Result; report: JsonReport }> {
  const result = await cli(['audit-config', '--json', ...args]);
  // --json: stdout is one JSON document and nothing else.
  return { result, report: JSON.parse(result.stdout) as JsonReport };
}

describe('audit-config on the good example', () => {
  it('has no high finding: --strict exits 0', async () => {
    const { result, report } = await jsonReport(['--config', GOOD, '--strict']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(report.summary.high).toBe(0);
    expect(report.findings.filter((f) => f.severity === 'high')).toEqual([]);
    expect(report.summary.medium).toBe(0);
    expect(report.routes).toBe(4);
    expect(report.tenets.map((t) => t.tenet)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(report.tenets.map((t) => t.name)).toEqual(TENETS.map((t) => t.name));
    for (const t of report.tenets) expect(t.stage).toBe('optimal');
    expect(report.maturity.stage).toBe('optimal');
    expect(report.maturity.score).toBeGreaterThanOrEqual(90);
  });

  it('prints a readable report', async () => {
    const r = await cli(['audit-config', '--config', GOOD]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`zero-trust posture of ${GOOD} (4 routes)`);
    expect(r.stdout).toMatch(/^LOW {4}route-public \(route "assets", routes\[0\]\.public, line \d+\)$/m);
    expect(r.stdout).toMatch(/^ {2}6 strict-enforcement +90 optimal +route-public$/m);
    expect(r.stdout).toMatch(/^findings: 0 high, 0 medium, 1 low, \d+ info$/m);
  });
});

describe('audit-config on the bad example', () => {
  it('reports without --strict (exit 0) and fails with it (exit 1)', async () => {
    const plain = await cli(['audit-config', '--config', BAD]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^HIGH {3}route-report-only \(route "new-policy", routes\[3\]\.mode, line \d+\)$/m);
    const strict = await cli(['audit-config', '--config', BAD, '--strict']);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain('findings: 11 high,');
  });

  it('has each high finding the issue names, located and with a fix', async () => {
    const { result, report } = await jsonReport(['--config', BAD, '--strict']);
    expect(result.code).toBe(1);
    const high = (id: string) => report.findings.filter((f) => f.id === id && f.severity === 'high');
    expect(high('route-report-only')).toEqual([expect.objectContaining({ route: 'new-policy', path: 'routes[3].mode', line: expect.any(Number) })]);
    expect(high('upstream-plaintext')).toEqual([expect.objectContaining({ route: 'upload', path: 'routes[1].upstream.url' })]);
    expect(high('cors-insecure-origin')).toEqual([expect.objectContaining({ route: 'reports', path: 'routes[2].cors.origins[0]' })]);
    expect(high('jwt-audience-unbound').map((f) => f.provider)).toEqual(['tokens', 'tokens-too']);
    expect(high('session-ttl-long')).toEqual([expect.objectContaining({ path: 'session.ttl' })]);
    expect(high('trusted-proxies-any')).toHaveLength(1);
    expect(high('jwt-clock-tolerance-large')).toEqual([expect.objectContaining({ provider: 'tokens' })]);
    // 0.0.0.0 and no admin credentials: /metrics is open to the network (issue 17).
    expect(high('admin-exposed')).toEqual([expect.objectContaining({ path: 'admin.listen' })]);
    expect(high('cross-origin-unprotected')).toEqual([expect.objectContaining({ route: 'app', path: 'routes[4].cross_origin.protect' })]);
    for (const id of HIGH_IDS) expect(high(id).length).toBeGreaterThan(0);
    expect(high('ext-authz-unguarded')).toEqual([expect.objectContaining({ path: 'ext_authz.listen' })]);
    expect(report.summary.high).toBe(11);
    for (const f of report.findings) {
      expect(f.message.length).toBeGreaterThan(10);
      expect(f.fix.length).toBeGreaterThan(10);
      expect(Object.keys(FINDINGS)).toContain(f.id);
      expect(f.tenets).toEqual(FINDINGS[f.id as keyof typeof FINDINGS].tenets);
    }
    // Findings are ordered worst first.
    const order = report.findings.map((f) => ['high', 'medium', 'low', 'info'].indexOf(f.severity));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('covers every finding id but admin-missing (the bad example has an admin listener)', async () => {
    const { report } = await jsonReport(['--config', BAD]);
    const ids = new Set(report.findings.map((f) => f.id));
    expect(Object.keys(FINDINGS).filter((id) => !ids.has(id))).toEqual(['admin-missing']);
  });

  it('reports a report-only CSP (the default) as medium, once per route, with the way to enforce it', async () => {
    const { report } = await jsonReport(['--config', BAD]);
    const csp = report.findings.filter((f) => f.id === 'csp-report-only');
    expect(csp.length).toBeGreaterThan(0);
    for (const f of csp) {
      expect(f).toMatchObject({ severity: 'medium', path: expect.stringMatching(/^routes\[\d+\]$/), route: expect.any(String) });
      expect(f.fix).toBe(`run \`zt-gateway csp suggest --route ${f.route}\`, add its directives under the route, then set security_headers.csp.report_only: false`);
    }
    expect(new Set(csp.map((f) => f.route)).size).toBe(csp.length);
  });

  it('scores the tenets from distinct finding ids (high 40, medium 20, low 10)', async () => {
    const { report } = await jsonReport(['--config', BAD]);
    const t = (n: number) => report.tenets.find((x) => x.tenet === n);
    // Tenet 1: route-public-writable (medium) and route-public (low), however many routes.
    expect(t(1)).toMatchObject({ score: 70, stage: 'advanced', findings: ['route-public-writable', 'route-public'] });
    // Tenet 7: access-log-off and log-level-quiet (both medium).
    expect(t(7)).toMatchObject({ score: 60, stage: 'initial' });
    expect(t(6)).toMatchObject({ score: 0, stage: 'traditional' });
    expect(t(6)?.findings.slice(0, 5)).toEqual(['cross-origin-unprotected', 'ext-authz-unguarded', 'jwt-audience-unbound', 'route-report-only', 'trusted-proxies-any']);
    const mean = Math.round(report.tenets.reduce((s, x) => s + x.score, 0) / 7);
    expect(report.maturity).toMatchObject({ score: mean, stage: 'traditional' });
  });
});

describe('audit-config edge cases', () => {
  it('admin-exposed is high off loopback when /metrics is unauthenticated, low when it takes the admin token', async () => {
    const dir = tempDir('ztgw-audit-');
    const hash = 'ab'.repeat(32);
    const cases: Array<[string, string]> = [
      ['{ listen: 0.0.0.0:9090 }', 'high'],
      [`{ listen: 0.0.0.0:9090, token_hash: "${hash}", metrics: public }`, 'high'],
      [`{ listen: 0.0.0.0:9090, token_hash: "${hash}" }`, 'low'],
      [`{ listen: "[::]:9090", token_hash: "${hash}", metrics: authenticated }`, 'low'],
    ];
    for (const [admin, severity] of cases) {
      const file = join(dir, 'admin.yaml');
      writeFileSync(file, `listen: { address: 127.0.0.1:8000, plaintext: true }\nadmin: ${admin}\nroutes:\n  - { name: a, upstream: { url: "http://127.0.0.1:1" }, public: true, match: { methods: [GET] } }\n`);
      const { report } = await jsonReport(['--config', file]);
      expect(report.findings.filter((f) => f.id === 'admin-exposed').map((f) => f.severity), admin).toEqual([severity]);
    }
    // On loopback there is no finding, whatever /metrics allows.
    const file = join(dir, 'loopback.yaml');
    writeFileSync(file, 'listen: { address: 127.0.0.1:8000, plaintext: true }\nadmin: { listen: 127.0.0.1:9090 }\nroutes:\n  - { name: a, upstream: { url: "http://127.0.0.1:1" }, public: true, match: { methods: [GET] } }\n');
    expect((await jsonReport(['--config', file])).report.findings.map((f) => f.id)).not.toContain('admin-exposed');
  });

  it('reports admin-missing, and fails on an invalid config with its errors (exit 1, no report)', async () => {
    const dir = tempDir('ztgw-audit-');
    const ok = join(dir, 'ok.yaml');
    writeFileSync(ok, 'listen: { address: 127.0.0.1:8000, plaintext: true }\nroutes:\n  - { name: a, upstream: { url: "http://127.0.0.1:1" }, public: true, match: { methods: [GET] } }\n');
    const { result, report } = await jsonReport(['--config', ok]);
    expect(result.code).toBe(0);
    expect(report.findings.map((f) => f.id)).toContain('admin-missing');
    expect(report.findings.find((f) => f.id === 'route-public')).toMatchObject({ severity: 'low', route: 'a' });

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'listen: { address: 127.0.0.1:8000, plaintext: true }\nroutes:\n  - { name: a, upstream: { url: "http://127.0.0.1:1" }, mode: sometimes }\n');
    const r = await cli(['audit-config', '--config', bad, '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/routes\[0\]\.mode: .* at line 3:/);
    expect(r.stderr).toContain('invalid config, no posture report');
    rmSync(dir, { recursive: true, force: true });
  });

  it('needs --config (usage, exit 2)', async () => {
    const r = await cli(['audit-config', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('zt-gateway audit-config --config <file>');
  });
});

describe('audit-config --metrics-url', () => {
  // A fixed scrape as a gateway exports it: 30 of 40 authenticated requests with MFA, 9 of 12 service calls
  // over mTLS, 7 denied service calls on two routes, 3 active grants.
  const METRICS = [
    '# HELP zt_authenticated_requests_total Authenticated requests by method and MFA.',
    '# TYPE zt_authenticated_requests_total counter',
    'zt_authenticated_requests_total{method="session",mfa="true"} 25',
    'zt_authenticated_requests_total{method="session",mfa="false"} 6',
    'zt_authenticated_requests_total{method="jwt",mfa="true"} 5',
    'zt_authenticated_requests_total{method="jwt",mfa="false"} 4',
    '# TYPE zt_service_requests_total counter',
    'zt_service_requests_total{mtls="true"} 9',
    'zt_service_requests_total{mtls="false"} 3',
    '# TYPE zt_service_denied_total counter',
    'zt_service_denied_total{route="billing"} 5',
    'zt_service_denied_total{route="orders \\"v2\\""} 2',
    '# TYPE zt_grants_active gauge',
    'zt_grants_active 3',
    'zt_requests_total{route="orders",status="200"} 1000',
    '',
  ].join('\n');
  let server: Server;
  let base: string;
  const seen: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(METRICS);
      } else if (req.url === '/huge') {
        // 17 MB of valid samples: more than the 16 MB the report reads.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = 'zt_grants_active 1\n'.repeat(65_536);
        let sent = 0;
        const pump = () => {
          while (sent < 17 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('error', () => undefined);
        pump();
      } else if (req.url === '/html') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>login</body></html>\n');
      } else if (req.url === '/authed') {
        // A gateway whose /metrics takes the admin token (admin.metrics: authenticated).
        if (req.headers.authorization === 'Bearer scrape-token-0123456789') res.writeHead(200, { 'content-type': 'text/plain' }).end(METRICS);
        else res.writeHead(401, { 'www-authenticate': 'Bearer realm="zt-gateway-admin"' }).end('{}');
      } else if (req.url === '/partial') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('zt_grants_active 0\n');
      } else res.writeHead(500).end('boom');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('summarizes the zero-trust progress figures (JSON)', async () => {
    const { result, report } = await jsonReport(['--config', GOOD, '--metrics-url', `${base}/metrics`]);
    expect(result.code).toBe(0);
    expect(seen).toContain('GET /metrics');
    expect(report.metrics).toEqual({
      url: `${base}/metrics`,
      mfa_share: 0.75,
      authenticated_requests: 40,
      mtls_share: 0.75,
      service_requests: 12,
      service_denied: 7,
      service_denied_by_route: { billing: 5, 'orders "v2"': 2 },
      grants_active: 3,
      missing: [],
    });
  });

  it('prints them in the text report, and names metrics the gateway does not export', async () => {
    const r = await cli(['audit-config', '--config', GOOD, '--metrics-url', `${base}/metrics`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/requests with MFA: +75\.0 % of 40 authenticated/);
    expect(r.stdout).toMatch(/service calls over mTLS: +75\.0 % of 12/);
    expect(r.stdout).toMatch(/denied service calls: +7 \(billing: 5, orders "v2": 2\)/);
    expect(r.stdout).toMatch(/active just-in-time grants: +3/);

    const { report } = await jsonReport(['--config', GOOD, '--metrics-url', `${base}/partial`]);
    expect(report.metrics).toMatchObject({ mfa_share: null, mtls_share: null, service_denied: null, grants_active: 0 });
    expect(report.metrics?.missing).toEqual(['zt_authenticated_requests_total', 'zt_service_requests_total', 'zt_service_denied_total']);
  });

  it('sends ZT_ADMIN_TOKEN as the bearer credential for an authenticated /metrics', async () => {
    const args = ['audit-config', '--json', '--config', GOOD, '--metrics-url', `${base}/authed`];
    const without = await cli(args);
    expect(without.code).toBe(1);
    expect(JSON.parse(without.stdout).metrics).toEqual({ url: `${base}/authed`, error: `${base}/authed answered 401` });
    const withToken = await cli(args, 30_000, { ZT_ADMIN_TOKEN: 'scrape-token-0123456789' });
    expect(withToken.code).toBe(0);
    expect(JSON.parse(withToken.stdout).metrics).toMatchObject({ mfa_share: 0.75, grants_active: 3 });
  });

  it('fails (exit 1) when the metrics cannot be read, still printing the report', async () => {
    const { result, report } = await jsonReport(['--config', GOOD, '--metrics-url', `${base}/broken`]);
    expect(result.code).toBe(1);
    expect(report.metrics).toEqual({ url: `${base}/broken`, error: `${base}/broken answered 500` });
    expect(report.summary.high).toBe(0);
    expect(result.stderr).toContain('cannot read metrics');
  });

  it('refuses an oversized or non-Prometheus answer instead of reporting figures from it', async () => {
    const huge = await jsonReport(['--config', GOOD, '--metrics-url', `${base}/huge`]);
    expect(huge.result.code).toBe(1);
    expect(huge.report.metrics).toEqual({ url: `${base}/huge`, error: `${base}/huge: more than 16777216 bytes` });
    const html = await jsonReport(['--config', GOOD, '--metrics-url', `${base}/html`]);
    expect(html.result.code).toBe(1);
    expect(html.report.metrics).toEqual({ url: `${base}/html`, error: 'metrics line 1: no metric name' });
    const scheme = await jsonReport(['--config', GOOD, '--metrics-url', 'file:///etc/passwd']);
    expect(scheme.result.code).toBe(1);
    expect(scheme.report.metrics).toEqual({ url: 'file:///etc/passwd', error: '--metrics-url must be http:// or https://' });
  });
});
