// The CSP report endpoint /.zt/csp-report/<route token> on a real gateway: both report formats are
// aggregated per route (the route comes from the token, never from the report's document-uri), counted in
// zt_csp_violations_total, logged once per key per minute, listed by GET /admin/v1/csp-violations and
// turned into a policy by `zt-gateway csp suggest` (admin API and --log). Hostile: oversized, garbage,
// wrong type, unknown token, flood; the upstream never sees a report.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, ADMIN_TOKEN, ADMIN_TOKEN_HASH } from '../helpers/access.ts';
import { ensureBuilt } from '../helpers/build.ts';
import { cli } from '../helpers/cli.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { scrape } from '../helpers/metrics.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const CONFIG = (upstream: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
admin: { listen: 127.0.0.1:0, token_hash: "${ADMIN_TOKEN_HASH}" }
trusted_proxies: [127.0.0.1/32]
routes:
  - name: app
    match: { path: /app }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
  - name: other
    match: { path: /other }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
    security_headers: { csp: { report_only: false } }
  - name: own-reports
    match: { path: /own }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
    security_headers: { csp: { directives: { report-uri: [/somewhere] } } }
  - name: all
    match: { path: / }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
`;

let upstream: Upstream;
let gw: TestGateway;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  await ensureBuilt();
  upstream = await startUpstream();
  gw = await startGateway(CONFIG(upstream.url));
  for (const r of gw.gateway.runtime.current.compiled.routes) if (r.cspToken !== null) tokens[r.name] = r.cspToken;
}, 180_000);
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

const legacy = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    'csp-report': {
      'document-uri': 'http://127.0.0.1/app/page?secret=1',
      referrer: '',
      'violated-directive': 'script-src-elem',
      'effective-directive': 'script-src-elem',
      'original-policy': "default-src 'self'",
      disposition: 'report',
      'blocked-uri': 'inline',
      'status-code': 200,
      ...over,
    },
  });

async function post(path: string, body: string, type = 'application/csp-report', headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': type, ...headers }, body });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text };
}

const code = (body: string) => (JSON.parse(body) as { code: string }).code;
const report = (route: string) => `/.zt/csp-report/${tokens[route]}`;

async function violations(route?: string) {
  const a = await admin(gw, 'GET', `/admin/v1/csp-violations${route ? `?route=${route}` : ''}`);
  return a;
}

describe('the report endpoint', () => {
  it('issues one token per route that reports to the gateway; none for a route with its own report-uri', () => {
    expect(Object.keys(tokens).sort()).toEqual(['all', 'app', 'other']);
    for (const t of Object.values(tokens)) expect(t).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(new Set(Object.values(tokens)).size).toBe(3);
  });

  it('accepts application/csp-report: 204, aggregated under the route of the token, never forwarded', async () => {
    const before = upstream.received.length;
    const a = await post(report('app'), legacy(), 'application/csp-report', { 'x-forwarded-for': '10.0.0.1' });
    expect(a.status).toBe(204);
    expect(a.body).toBe('');
    // Hostile: the document-uri names another route; the token decides.
    const b = await post(report('app'), legacy({ 'document-uri': 'http://127.0.0.1/other/x?token=abc', 'blocked-uri': 'https://cdn.example.com/lib.js?v=1', 'effective-directive': 'script-src-elem' }), 'application/csp-report; charset=utf-8', { 'x-forwarded-for': '10.0.0.2' });
    expect(b.status).toBe(204);
    const c = await post(report('app'), legacy(), 'application/csp-report', { 'x-forwarded-for': '10.0.0.2' });
    expect(c.status).toBe(204);
    expect(upstream.received.length).toBe(before);
    expect(upstream.received.some((r) => r.url.includes('csp-report'))).toBe(false);

    const v = await violations('app');
    expect(v.status).toBe(200);
    const body = v.body as { routes: Array<{ route: string; report_only: boolean; violations: Array<Record<string, unknown>>; policy: Record<string, string[]> }> };
    expect(body.routes).toHaveLength(1);
    const app = body.routes[0]!;
    expect(app.route).toBe('app');
    expect(app.report_only).toBe(true);
    expect(app.policy['script-src']).toEqual(["'self'"]);
    expect(app.policy['report-uri']).toBeUndefined();
    // Most recently seen first; the inline key has 2 reports from 2 addresses.
    expect(app.violations.map((x) => ({ ...x, first_seen: typeof x.first_seen, last_seen: typeof x.last_seen }))).toEqual([
      { directive: 'script-src-elem', blocked: "'inline'", count: 2, clients: 2, first_seen: 'string', last_seen: 'string', sample_path: '/app/page' },
      { directive: 'script-src-elem', blocked: 'https://cdn.example.com', count: 1, clients: 1, first_seen: 'string', last_seen: 'string', sample_path: '/other/x' },
    ]);
    // The other route did not move.
    const other = (await violations('other')).body as { routes: Array<{ violations: unknown[]; report_only: boolean }> };
    expect(other.routes[0]).toMatchObject({ violations: [], report_only: false });
  });

  it('accepts application/reports+json (Reporting API): csp-violation reports only, other types ignored', async () => {
    const reports = JSON.stringify([
      { type: 'csp-violation', age: 10, url: 'https://h/other/a', user_agent: 'x', body: { documentURL: 'https://h/other/a?q=1', blockedURL: 'eval', effectiveDirective: 'script-src', disposition: 'enforce' } },
      { type: 'deprecation', body: { id: 'x' } },
      { type: 'csp-violation', body: { documentURL: 'https://h/other/b', blockedURL: 'data:image/png;base64,AAAA', effectiveDirective: 'img-src' } },
      { type: 'csp-violation', body: { documentURL: 'https://h/other/b', blockedURL: 'inline', effectiveDirective: 'bad directive!' } },
    ]);
    expect((await post(report('other'), reports, 'application/reports+json')).status).toBe(204);
    const other = (await violations('other')).body as { routes: Array<{ violations: Array<Record<string, unknown>> }> };
    expect(other.routes[0]!.violations.map((v) => [v.directive, v.blocked, v.count, v.sample_path])).toEqual([
      ['img-src', 'data:', 1, '/other/b'],
      ['script-src', "'eval'", 1, '/other/a'],
    ]);
  });

  it('counts zt_csp_violations_total{route,directive} and logs each key at most once a minute', async () => {
    const m = await scrape(gw.gateway.adminUrl as string, ADMIN_TOKEN);
    expect(m.value('zt_csp_violations_total', { route: 'app', directive: 'script-src-elem' })).toBe(3);
    expect(m.value('zt_csp_violations_total', { route: 'other', directive: 'script-src' })).toBe(1);
    expect(m.value('zt_csp_violations_total', { route: 'other', directive: 'img-src' })).toBe(1);
    const lines = gw.logs.filter((l) => l.msg === 'csp violation');
    const inline = lines.filter((l) => (l.csp as { route: string; blocked: string }).route === 'app' && (l.csp as { blocked: string }).blocked === "'inline'");
    expect(inline).toHaveLength(1); // 2 reports within the minute: one line
    expect(inline[0]!.csp).toMatchObject({ route: 'app', directive: 'script-src-elem', blocked: "'inline'", count: 1, clients: 1, sample_path: '/app/page' });
  });

  it('admin API: every route with reports; ?route= one; unknown route 404, bad name 400, no token 401', async () => {
    const all = (await violations()).body as { routes: Array<{ route: string }> };
    expect(all.routes.map((r) => r.route)).toEqual(['app', 'other']);
    expect((await violations('nope')).status).toBe(404);
    expect((await violations('bad%20name')).status).toBe(400);
    expect((await admin(gw, 'GET', '/admin/v1/csp-violations', { auth: null })).status).toBe(401);
  });

  it('csp suggest (admin API): the smallest additions, per key its clients; --min-clients leaves keys out', async () => {
    const env = { ZT_ADMIN_TOKEN: ADMIN_TOKEN };
    const r = await cli(['csp', 'suggest', '--route', 'app', '--admin-url', gw.gateway.adminUrl as string], 30_000, env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        '# zt-gateway csp suggest --route app: 2 reported key(s), 2 with at least 1 client(s)',
        '#   clients   count  directive          blocked → allowed in',
        "#         2       2  script-src-elem    'inline' → script-src 'unsafe-inline'",
        '#         1       1  script-src-elem    https://cdn.example.com → script-src https://cdn.example.com',
        "# warning: script-src-elem: 'unsafe-inline' allows any injected inline code. Set security_headers.csp.learn: true on route \"app\", load its pages, and run this again to get 'sha256-…' hashes instead.",
        'security_headers:',
        '  csp:',
        '    # report_only: false   # enforce once this policy draws no new reports',
        '    directives:',
        `      script-src: ["'self'", "'unsafe-inline'", "https://cdn.example.com"]`,
        '',
      ].join('\n'),
    );
    const two = await cli(['csp', 'suggest', '--route', 'app', '--min-clients', '2', '--admin-url', gw.gateway.adminUrl as string, '--token', ADMIN_TOKEN]);
    expect(two.code).toBe(0);
    expect(two.stdout).toContain('#   left out: script-src-elem https://cdn.example.com (1 client(s), 1 report(s))');
    expect(two.stdout).toContain(`      script-src: ["'self'", "'unsafe-inline'"]\n`);
    const other = await cli(['csp', 'suggest', '--route', 'other', '--admin-url', gw.gateway.adminUrl as string], 30_000, env);
    expect(other.stdout).not.toContain('img-src:'); // data: is already allowed: nothing to add
    expect(other.stdout).toContain(`      script-src: ["'self'", "'unsafe-eval'"]\n`);
    expect(other.stdout).toContain("# warning: script-src: 'unsafe-eval' lets the page turn strings into code (eval, new Function).");
    // Refusals: unknown route (1), unreachable (1), usage (2).
    expect((await cli(['csp', 'suggest', '--route', 'nope', '--admin-url', gw.gateway.adminUrl as string], 30_000, env)).code).toBe(1);
    expect((await cli(['csp', 'suggest', '--route', 'app', '--admin-url', 'http://127.0.0.1:9'], 30_000, env)).code).toBe(1);
    expect((await cli(['csp', 'suggest'])).code).toBe(2);
    expect((await cli(['csp', 'suggest', '--route', 'app', '--min-clients', '0'])).code).toBe(2);
  });

  it('csp suggest --log reads the gateway log lines', async () => {
    const file = join(gw.dir, 'gateway.log');
    writeFileSync(file, `not json\n${gw.logs.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const r = await cli(['csp', 'suggest', '--route', 'app', '--log', file]);
    expect(r.code).toBe(0);
    // The log holds each key's first line of the minute (count 1, clients 1 here).
    expect(r.stdout).toContain("#         1       1  script-src-elem    'inline' → script-src 'unsafe-inline'");
    expect(r.stdout).toContain(`      script-src: ["'self'", "'unsafe-inline'", "https://cdn.example.com"]\n`);
    const withConfig = await cli(['csp', 'suggest', '--route', 'other', '--log', file, '--config', gw.configFile]);
    expect(withConfig.code).toBe(0);
    expect(withConfig.stdout).toContain(`      script-src: ["'self'", "'unsafe-eval'"]\n`);
  });
});

describe('hostile reports', () => {
  it('65 KB → 413 (declared or chunked), before anything is counted', async () => {
    const big = legacy({ 'script-sample': 'x'.repeat(65 * 1024) });
    const a = await post(report('app'), big);
    expect(a.status).toBe(413);
    expect(code(a.body)).toBe('GW_ERR_BODY_TOO_LARGE');
    const chunked = await request(`${gw.url}${report('app')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/csp-report' },
      body: (async function* () {
        for (let i = 0; i < 65; i++) yield Buffer.alloc(1024, 0x20);
      })(),
    });
    expect(chunked.statusCode).toBe(413);
    await chunked.body.dump();
  });

  it('garbage → 400 (never a crash); wrong type 415; unknown token or GET 404', async () => {
    for (const [body, type] of [
      ['{not json', 'application/csp-report'],
      ['[]', 'application/csp-report'],
      ['{"csp-report": "x"}', 'application/csp-report'],
      ['{"csp-report": {"blocked-uri": "inline"}}', 'application/csp-report'],
      ['{"type": "csp-violation"}', 'application/reports+json'],
      ['\u0000\u0001', 'application/reports+json'],
    ] as const) {
      const a = await post(report('app'), body, type);
      expect({ body: body.slice(0, 20), status: a.status }).toEqual({ body: body.slice(0, 20), status: 400 });
      expect(code(a.body)).toBe('GW_ERR_BAD_REQUEST');
    }
    const deep = await post(report('app'), '['.repeat(30000) + ']'.repeat(30000), 'application/reports+json');
    expect(deep.status).toBe(204); // nested arrays are a valid JSON array with no csp-violation in it
    expect((await post(report('app'), legacy(), 'text/plain')).status).toBe(415);
    expect((await post('/.zt/csp-report/AAAAAAAAAAAAAAAAAAAAAA', legacy())).status).toBe(404);
    expect((await post('/.zt/csp-report/app', legacy())).status).toBe(404);
    expect((await post('/.zt/csp-report/', legacy())).status).toBe(404);
    const get = await request(`${gw.url}${report('app')}`);
    expect(get.statusCode).toBe(404);
    await get.body.dump();
    // The raw parser path: a report with a NUL in the target never reaches the endpoint.
    const raw = await rawRequest(gw.port, `POST ${report('app')}%00 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/csp-report\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(raw.status).toBe(400);
    expect(upstream.received.some((r) => r.url.includes('csp-report'))).toBe(false);
    const m = await scrape(gw.gateway.adminUrl as string, ADMIN_TOKEN);
    expect(m.value('zt_csp_violations_total', { route: 'app', directive: 'script-src-elem' })).toBe(3);
  });

  it('a flood from one address → 429 after 240 reports a minute; another address still reports', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 260; i++) statuses.push((await post(report('all'), legacy({ 'blocked-uri': `https://h${i % 3}.example.com/x` }), 'application/csp-report', { 'x-forwarded-for': '10.9.9.9' })).status);
    expect(statuses.filter((s) => s === 204)).toHaveLength(240);
    expect(statuses.slice(240)).toEqual(Array(20).fill(429));
    const limited = await post(report('all'), legacy(), 'application/csp-report', { 'x-forwarded-for': '10.9.9.9' });
    expect(limited.status).toBe(429);
    expect(code(limited.body)).toBe('GW_ERR_RATE_LIMITED');
    expect(limited.headers['retry-after']).toBe('60');
    expect((await post(report('all'), legacy(), 'application/csp-report', { 'x-forwarded-for': '10.9.9.10' })).status).toBe(204);
    const all = (await violations('all')).body as { routes: Array<{ violations: Array<{ count: number }> }> };
    expect(all.routes[0]!.violations.reduce((n, v) => n + v.count, 0)).toBe(241);
  });
});
