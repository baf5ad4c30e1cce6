// Security headers computed once per route (helmet run against a recorder) and merged with what an upstream
// sent: exact values, overrides, keep_upstream, CORS stripping, and config errors.
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfigText } from '../../src/config/load.ts';
import type { SecurityHeadersConfig } from '../../src/config/schema.ts';
import { responseHeaders } from '../../src/proxy/response-headers.ts';
import { compileCors } from '../../src/response/cors.ts';
import { compileSecurityHeaders, withCspReportToken } from '../../src/response/security-headers.ts';
import { tempDir } from '../helpers/gateway.ts';

const CSP_BODY =
  "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'none';" +
  "img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline'";
/** What `report_only: false` enforces: helmet's defaults with upgrade-insecure-requests. */
const DEFAULT_CSP = `${CSP_BODY};upgrade-insecure-requests`;
const DEFAULT_PERMISSIONS =
  'accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()';

const DEFAULTS: Array<[string, string]> = [
  ['strict-transport-security', 'max-age=31536000; includeSubDomains'],
  // Report-only by default (the same strict policy, without upgrade-insecure-requests, which report-only ignores).
  ['content-security-policy-report-only', CSP_BODY],
  ['x-frame-options', 'DENY'],
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
  ['cross-origin-opener-policy', 'same-origin'],
  ['permissions-policy', DEFAULT_PERMISSIONS],
];

function pairs(flat: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

const asMap = (flat: readonly string[]) => Object.fromEntries(pairs(flat));
const cfg = (c: object) => c as SecurityHeadersConfig;
const DAY = 86_400_000;

describe('compileSecurityHeaders', () => {
  it('defaults: the full set, exact values, in a fixed order', () => {
    const set = compileSecurityHeaders({}, undefined);
    expect(pairs(set.flat)).toEqual(DEFAULTS);
    expect([...set.names]).toEqual(DEFAULTS.map(([n]) => n));
    expect(set.keepUpstream.size).toBe(0);
  });

  it('HSTS: max-age in seconds, includeSubDomains and preload as configured; false turns it off', () => {
    const on = compileSecurityHeaders(cfg({ hsts: { max_age: 2 * 365 * DAY, include_subdomains: true, preload: true } }), undefined);
    expect(asMap(on.flat)['strict-transport-security']).toBe('max-age=63072000; includeSubDomains; preload');
    const bare = compileSecurityHeaders(cfg({ hsts: { max_age: 3_600_000, include_subdomains: false, preload: false } }), undefined);
    expect(asMap(bare.flat)['strict-transport-security']).toBe('max-age=3600');
    const off = compileSecurityHeaders(cfg({ hsts: false }), undefined);
    expect(off.names.has('strict-transport-security')).toBe(false);
    expect(off.flat).not.toContain('strict-transport-security');
  });

  it('CSP: directives override helmet defaults; `true` is a valueless directive; report_only renames the header', () => {
    const custom = compileSecurityHeaders(
      cfg({ csp: { report_only: false, directives: { 'script-src': ["'self'", 'https://cdn.example.com'], 'block-all-mixed-content': true } } }),
      undefined,
    );
    expect(asMap(custom.flat)['content-security-policy']).toBe(
      DEFAULT_CSP.replace("script-src 'self';", "script-src 'self' https://cdn.example.com;") + ';block-all-mixed-content',
    );
    const ro = compileSecurityHeaders(cfg({ csp: { report_only: true } }), undefined);
    expect(ro.names.has('content-security-policy')).toBe(false);
    // upgrade-insecure-requests means nothing in a report-only policy (browsers complain): left out…
    expect(asMap(ro.flat)['content-security-policy-report-only']).toBe(CSP_BODY);
    // …unless asked for explicitly.
    const roUpgrade = compileSecurityHeaders(cfg({ csp: { report_only: true, directives: { 'upgrade-insecure-requests': true } } }), undefined);
    expect(asMap(roUpgrade.flat)['content-security-policy-report-only']).toBe(DEFAULT_CSP);
    const off = compileSecurityHeaders(cfg({ csp: false }), undefined);
    expect(off.names.has('content-security-policy')).toBe(false);
    expect(off.names.has('content-security-policy-report-only')).toBe(false);
    expect(asMap(off.flat)['x-frame-options']).toBe('DENY');
  });

  it("frame-ancestors follows X-Frame-Options (DENY → 'none', SAMEORIGIN → 'self') unless set explicitly", () => {
    const same = asMap(compileSecurityHeaders(cfg({ frame_options: 'sameorigin' }), undefined).flat);
    expect(same['x-frame-options']).toBe('SAMEORIGIN');
    expect(same['content-security-policy-report-only']).toBe(CSP_BODY.replace("frame-ancestors 'none'", "frame-ancestors 'self'"));
    const explicit = asMap(
      compileSecurityHeaders(cfg({ csp: { report_only: false, directives: { 'frame-ancestors': ['https://portal.example.com'] } } }), undefined).flat,
    );
    expect(explicit['x-frame-options']).toBe('DENY');
    expect(explicit['content-security-policy']).toBe(DEFAULT_CSP.replace("frame-ancestors 'none'", 'frame-ancestors https://portal.example.com'));
    const noXfo = compileSecurityHeaders(cfg({ frame_options: false }), undefined);
    expect(noXfo.names.has('x-frame-options')).toBe(false);
  });

  it('Referrer-Policy (single or fallback list), COOP and Permissions-Policy are configurable or off', () => {
    const m = asMap(
      compileSecurityHeaders(
        cfg({
          referrer_policy: 'no-referrer, strict-origin-when-cross-origin',
          cross_origin_opener_policy: 'same-origin-allow-popups',
          permissions_policy: 'camera=(self)',
        }),
        undefined,
      ).flat,
    );
    expect(m['referrer-policy']).toBe('no-referrer,strict-origin-when-cross-origin');
    expect(m['cross-origin-opener-policy']).toBe('same-origin-allow-popups');
    expect(m['permissions-policy']).toBe('camera=(self)');
    const off = compileSecurityHeaders(cfg({ referrer_policy: false, cross_origin_opener_policy: false, permissions_policy: false }), undefined);
    expect([...off.names]).toEqual(['strict-transport-security', 'content-security-policy-report-only', 'x-frame-options', 'x-content-type-options']);
  });

  it('a route overrides the top-level settings key by key', () => {
    const global = cfg({ hsts: { max_age: 2 * DAY, include_subdomains: true, preload: true }, referrer_policy: 'same-origin' });
    const route = compileSecurityHeaders(global, cfg({ referrer_policy: 'no-referrer', keep_upstream: ['Content-Security-Policy', 'X-Frame-Options'] }));
    const m = asMap(route.flat);
    expect(m['strict-transport-security']).toBe('max-age=172800; includeSubDomains; preload');
    expect(m['referrer-policy']).toBe('no-referrer');
    expect(m['content-security-policy-report-only']).toBe(CSP_BODY);
    expect(m['content-security-policy']).toBeUndefined();
    expect([...route.keepUpstream]).toEqual(['content-security-policy', 'x-frame-options']);
  });

  it('report_only: false enforces, top level or per route; a route csp is merged over the top-level one', () => {
    expect(asMap(compileSecurityHeaders(cfg({ csp: { report_only: false } }), undefined).flat)['content-security-policy']).toBe(DEFAULT_CSP);
    // Per route, over the default.
    const route = compileSecurityHeaders({}, cfg({ csp: { report_only: false } }));
    expect(asMap(route.flat)['content-security-policy']).toBe(DEFAULT_CSP);
    expect(route.names.has('content-security-policy-report-only')).toBe(false);
    // Enforced globally; a route that only adds directives stays enforced and keeps the global ones.
    const merged = compileSecurityHeaders(
      cfg({ csp: { report_only: false, directives: { 'img-src': ["'self'", 'https://img.example.com'] } } }),
      cfg({ csp: { directives: { 'script-src': ["'self'", "'sha256-abc='"] } } }),
    );
    expect(asMap(merged.flat)['content-security-policy']).toBe(
      DEFAULT_CSP.replace("img-src 'self' data:", "img-src 'self' https://img.example.com").replace("script-src 'self';", "script-src 'self' 'sha256-abc=';"),
    );
    expect(merged.csp).toEqual({
      reportOnly: false,
      learn: false,
      reportsToGateway: false,
      directives: expect.objectContaining({ 'script-src': ["'self'", "'sha256-abc='"], 'upgrade-insecure-requests': [] }),
    });
    // A route can go back to report-only, or turn the policy off.
    expect(compileSecurityHeaders(cfg({ csp: { report_only: false } }), cfg({ csp: { report_only: true } })).names.has('content-security-policy-report-only')).toBe(true);
    expect(compileSecurityHeaders(cfg({ csp: { report_only: false } }), cfg({ csp: false })).csp).toBeNull();
  });

  it('reports to the gateway: report-uri, report-to and Reporting-Endpoints carry the route token; an own report-uri wins', () => {
    const set = withCspReportToken(compileSecurityHeaders({}, undefined, true), 'T0kenT0kenT0kenT0ken_-');
    expect(pairs(set.flat).slice(1, 3)).toEqual([
      ['content-security-policy-report-only', `${CSP_BODY};report-uri /.zt/csp-report/T0kenT0kenT0kenT0ken_-;report-to zt-csp`],
      ['reporting-endpoints', 'zt-csp="/.zt/csp-report/T0kenT0kenT0kenT0ken_-"'],
    ]);
    expect(set.csp?.reportsToGateway).toBe(true);
    expect(set.csp?.directives['report-uri']).toBeUndefined(); // the policy as the operator wrote it
    const enforced = withCspReportToken(compileSecurityHeaders(cfg({ csp: { report_only: false } }), undefined, true), 'x'.repeat(22));
    expect(asMap(enforced.flat)['content-security-policy']).toBe(`${DEFAULT_CSP};report-uri /.zt/csp-report/${'x'.repeat(22)};report-to zt-csp`);
    const own = compileSecurityHeaders(cfg({ csp: { directives: { 'report-uri': ['https://reports.example.com/csp'] } } }), undefined, true);
    expect(own.csp?.reportsToGateway).toBe(false);
    expect(withCspReportToken(own, 'y'.repeat(22))).toBe(own);
    expect(asMap(own.flat)['content-security-policy-report-only']).toBe(`${CSP_BODY};report-uri https://reports.example.com/csp`);
    expect(own.names.has('reporting-endpoints')).toBe(false);
  });

  it('refuses invalid values (helmet validates them)', () => {
    expect(() => compileSecurityHeaders(cfg({ csp: { report_only: false, directives: { 'script-src': ["'self'; evil"] } } }), undefined)).toThrow(
      /invalid directive value for "script-src"/,
    );
    expect(() => compileSecurityHeaders(cfg({ csp: { report_only: false, directives: { 'bad name': ['x'] } } }), undefined)).toThrow(
      /invalid directive name/,
    );
    expect(() => compileSecurityHeaders(cfg({ referrer_policy: 'leak-everything' }), undefined)).toThrow(/unexpected policy token/);
  });
});

describe('responseHeaders: merging the upstream answer with the route plan', () => {
  const security = compileSecurityHeaders({}, undefined);

  it('replaces every managed header the upstream sent (no duplicates), drops banners, keeps the rest', () => {
    const out = responseHeaders(
      {
        'content-type': 'text/html',
        'x-frame-options': 'ALLOWALL',
        'content-security-policy': "default-src *",
        'strict-transport-security': 'max-age=0',
        server: 'Apache/2.2',
        'x-powered-by': 'PHP/5.2',
        'set-cookie': ['a=1', 'b=2'],
      },
      'rid-1',
      { security, cors: null },
    );
    // The gateway's policy is report-only: the upstream's own enforced CSP passes (browsers enforce each
    // policy on its own, so it can only restrict more); every header the gateway sets is replaced.
    expect(pairs(out)).toEqual([
      ['content-type', 'text/html'], ['content-security-policy', 'default-src *'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2'], ...DEFAULTS, ['x-request-id', 'rid-1'],
    ]);
    const enforced = compileSecurityHeaders(cfg({ csp: { report_only: false } }), undefined);
    const replaced = pairs(responseHeaders({ 'content-security-policy': 'default-src *' }, 'r', { security: enforced, cors: null }));
    expect(replaced.filter(([n]) => n.startsWith('content-security-policy'))).toEqual([['content-security-policy', DEFAULT_CSP]]);
  });

  it("keep_upstream keeps the upstream's value and falls back to the gateway's when the upstream sent none", () => {
    const keep = compileSecurityHeaders(cfg({ csp: { report_only: false } }), cfg({ keep_upstream: ['content-security-policy'] }));
    const withCsp = pairs(responseHeaders({ 'content-security-policy': "default-src 'self' legacy.example.com", 'x-frame-options': 'ALLOWALL' }, 'r', { security: keep, cors: null }));
    expect(withCsp.filter(([n]) => n === 'content-security-policy')).toEqual([['content-security-policy', "default-src 'self' legacy.example.com"]]);
    expect(withCsp.filter(([n]) => n === 'x-frame-options')).toEqual([['x-frame-options', 'DENY']]);
    const without = pairs(responseHeaders({}, 'r', { security: keep, cors: null }));
    expect(without.filter(([n]) => n === 'content-security-policy')).toEqual([['content-security-policy', DEFAULT_CSP]]);
  });

  it("a CORS route drops the upstream's Access-Control-* headers and adds its own answer", () => {
    const cors = compileCors({
      origins: ['https://app.example.com'],
      methods: ['GET'],
      headers: [],
      expose_headers: [],
      credentials: false,
      max_age: 600_000,
    });
    const upstream = { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', vary: 'Accept-Encoding' };
    const allowed = pairs(responseHeaders(upstream, 'r', { security, cors: cors.actual('https://app.example.com') }));
    expect(allowed.filter(([n]) => n.startsWith('access-control-'))).toEqual([['access-control-allow-origin', 'https://app.example.com']]);
    expect(allowed.filter(([n]) => n === 'vary')).toEqual([['vary', 'Accept-Encoding'], ['vary', 'Origin']]);
    const refused = pairs(responseHeaders(upstream, 'r', { security, cors: cors.actual('https://evil.example.com') }));
    expect(refused.filter(([n]) => n.startsWith('access-control-'))).toEqual([]);
    // Without CORS config the upstream's own CORS headers pass.
    const plain = pairs(responseHeaders(upstream, 'r', { security, cors: null }));
    expect(plain.filter(([n]) => n.startsWith('access-control-'))).toEqual([
      ['access-control-allow-origin', '*'],
      ['access-control-allow-credentials', 'true'],
    ]);
  });
});

describe('security_headers and cors in a config file', () => {
  const compile = (yaml: string) => compileConfig(parseConfigText(yaml, 'gw.yaml', tempDir(), {}));
  const problems = async (yaml: string): Promise<string[]> => {
    try {
      await compile(yaml);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
      throw err;
    }
    return [];
  };
  const base = (routeExtra: string, top = '') => `listen: { address: 127.0.0.1:0, plaintext: true }
${top}routes:
  - name: app
    upstream: { url: http://127.0.0.1:9 }
    public: true
${routeExtra}`;

  it('compiles the top-level set once and a per-route set only where a route overrides it', async () => {
    const c = await compile(base('', 'security_headers: { referrer_policy: same-origin }\n'));
    expect(asMap(c.security.flat)['referrer-policy']).toBe('same-origin');
    // A route's set differs from the top-level one only by its CSP report endpoint.
    const token = c.routes[0]!.cspToken as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(c.cspRoutes.get(token)).toBe(c.routes[0]);
    expect(asMap(c.security.flat)['content-security-policy-report-only']).toBe(CSP_BODY);
    expect(pairs(c.routes[0]!.security.flat)).toEqual(
      pairs(c.security.flat).flatMap(([n, v]): Array<[string, string]> =>
        n === 'content-security-policy-report-only'
          ? [[n, `${CSP_BODY};report-uri /.zt/csp-report/${token};report-to zt-csp`], ['reporting-endpoints', `zt-csp="/.zt/csp-report/${token}"`]]
          : [[n, v]],
      ),
    );
    const r = await compile(base('    security_headers: { frame_options: sameorigin }\n', 'security_headers: { referrer_policy: same-origin }\n'));
    expect(asMap(r.routes[0]!.security.flat)['referrer-policy']).toBe('same-origin');
    expect(asMap(r.routes[0]!.security.flat)['x-frame-options']).toBe('SAMEORIGIN');
  });

  it('reports a bad CSP directive or referrer policy as a config error at its key path', async () => {
    expect(await problems(base('', 'security_headers: { referrer_policy: bogus }\n'))).toEqual([
      'security_headers: Referrer-Policy received an unexpected policy token "bogus"',
    ]);
    const p = await problems(base(`    security_headers: { csp: { directives: { script-src: ["'self'; x"] } } }\n`));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^routes\[0\]\.security_headers: .*script-src/);
  });

  it("refuses CORS origins '*', wildcards, paths and an empty list", async () => {
    for (const origin of ["'*'", "'https://*.example.com'", 'https://app.example.com/', 'app.example.com', "'null'"]) {
      const p = await problems(base(`    cors: { origins: [${origin}] }\n`));
      expect(p).toHaveLength(1);
      expect(p[0]).toMatch(/^routes\[0\]\.cors\.origins\[0\]: an exact origin/);
    }
    expect((await problems(base('    cors: { origins: [] }\n')))[0]).toMatch(/^routes\[0\]\.cors\.origins: /);
    expect(await problems(base('    cors: { origins: [https://app.example.com], credentials: true }\n'))).toEqual([]);
  });
});
