// Security response headers on every answer (proxied, 404, 401, 429), with configured values, per-route
// overrides, the report-only CSP (the default) reporting to the gateway per route, report_only: false,
// keep_upstream, and upstream attempts to weaken them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { hashKey } from '../../src/authn/api-key.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const KEY = 'ztk_security_headers_0123456789abcdefghijklmno';

// helmet's default CSP with frame-ancestors following X-Frame-Options.
const cspWithout = (frameAncestors: string, scriptSrc = "'self'") =>
  "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';" +
  `frame-ancestors ${frameAncestors};img-src 'self' data:;object-src 'none';script-src ${scriptSrc};` +
  "script-src-attr 'none';style-src 'self' https: 'unsafe-inline'";
const defaultCsp = (frameAncestors: string, scriptSrc = "'self'") => `${cspWithout(frameAncestors, scriptSrc)};upgrade-insecure-requests`;

const GLOBAL = {
  'strict-transport-security': 'max-age=172800; includeSubDomains; preload',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
  'cross-origin-opener-policy': 'same-origin',
} as const;

/** The route's report endpoint token, after checking the report-only policy and Reporting-Endpoints that carry it. */
function reportOnlyToken(headers: Record<string, string | string[] | undefined>, policy = cspWithout("'none'")): string {
  const value = headers['content-security-policy-report-only'];
  const m = /;report-uri \/\.zt\/csp-report\/([A-Za-z0-9_-]{22});report-to zt-csp$/.exec(String(value));
  expect(m, String(value)).not.toBeNull();
  const token = m![1] as string;
  expect(value).toBe(`${policy};report-uri /.zt/csp-report/${token};report-to zt-csp`);
  expect(headers['reporting-endpoints']).toBe(`zt-csp="/.zt/csp-report/${token}"`);
  return token;
}

const UPSTREAM_CSP = "default-src 'self' https://legacy.example.com; script-src 'unsafe-inline'";

const CONFIG = (upstream: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
rate_limits: { pre_auth: { per: ip, limit: 1000, window: 1m } }
identity_providers:
  keys: { type: api_key, keys_file: keys.yaml }
security_headers:
  hsts: { max_age: 2d, include_subdomains: true, preload: true }
  referrer_policy: strict-origin-when-cross-origin
  permissions_policy: "camera=(), microphone=(), geolocation=()"
routes:
  - name: app
    match: { path: /app }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
  - name: private
    match: { path: /private }
    upstream: { url: ${upstream}, timeout: 2s }
    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
  - name: custom
    match: { path: /custom }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
    security_headers:
      csp: { report_only: false, directives: { script-src: ["'self'", "https://cdn.example.com"] } }
      frame_options: sameorigin
      referrer_policy: no-referrer
      cross_origin_opener_policy: same-origin-allow-popups
      hsts: { max_age: 1h, include_subdomains: false, preload: false }
  - name: report
    match: { path: /report }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
    security_headers:
      csp: { report_only: true, directives: { report-uri: [/csp-report] } }
  - name: keep
    match: { path: /keep }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
    security_headers: { keep_upstream: [Content-Security-Policy] }
  - name: enforced
    match: { path: /enforced }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
    security_headers: { csp: { report_only: false } }
  - name: off
    match: { path: /off }
    upstream: { url: ${upstream}, timeout: 2s }
    public: true
    security_headers: { hsts: false, csp: false, permissions_policy: false, cross_origin_opener_policy: false }
`;

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    // Every upstream answer tries to weaken or duplicate the gateway's headers.
    if (req.url?.startsWith('/keep') || req.url?.startsWith('/app/weak') || req.url?.startsWith('/enforced/weak')) {
      res.writeHead(200, {
        'content-type': 'text/html',
        'content-security-policy': UPSTREAM_CSP,
        'x-frame-options': 'ALLOWALL',
        'strict-transport-security': 'max-age=0',
        'x-content-type-options': 'sniff-away',
        'referrer-policy': 'unsafe-url',
        'permissions-policy': 'camera=*',
        'cross-origin-opener-policy': 'unsafe-none',
        'x-legacy': 'kept',
      });
      res.end('<html></html>');
      return true;
    }
    return false;
  });
  gw = await startGateway(CONFIG(upstream.url), { files: { 'keys.yaml': `keys:\n  - { id: k1, hash: ${hashKey(KEY)}, subject: sam }\n` } });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

/** Each expected header appears exactly once with exactly this value. */
function expectHeaders(actual: Record<string, string | string[] | undefined>, expected: Record<string, string>): void {
  for (const [name, value] of Object.entries(expected)) expect({ [name]: actual[name] }).toEqual({ [name]: value });
}

describe('security headers on every response', () => {
  it('sets the configured set on a proxied 200', async () => {
    const a = await get('/app/page');
    expect(a.status).toBe(200);
    expectHeaders(a.headers, GLOBAL);
    // Report-only by default, reporting to the gateway under this route's token.
    const token = reportOnlyToken(a.headers);
    expect(a.headers['content-security-policy']).toBeUndefined();
    expect(reportOnlyToken((await get('/app/other')).headers)).toBe(token);
    expect(reportOnlyToken((await get('/private/x', { authorization: `ApiKey ${KEY}` })).headers)).not.toBe(token);
  });

  it('sets them on a 404 problem', async () => {
    const a = await get('/nowhere');
    expect(a.status).toBe(404);
    expect((JSON.parse(a.body) as { code: string }).code).toBe('GW_ERR_NO_ROUTE');
    expectHeaders(a.headers, GLOBAL);
    // No route, no report endpoint: the same policy, report-only, reporting nowhere.
    expectHeaders(a.headers, { 'content-security-policy-report-only': cspWithout("'none'") });
    expect(a.headers['content-security-policy']).toBeUndefined();
    expect(a.headers['reporting-endpoints']).toBeUndefined();
  });

  it('sets them on a 401 problem', async () => {
    const before = upstream.received.length;
    const a = await get('/private/x');
    expect(a.status).toBe(401);
    expect((JSON.parse(a.body) as { code: string }).code).toBe('GW_ERR_UNAUTHENTICATED');
    expectHeaders(a.headers, GLOBAL);
    reportOnlyToken(a.headers);
    expect(upstream.received.length).toBe(before);
    const ok = await get('/private/x', { authorization: `ApiKey ${KEY}` });
    expect(ok.status).toBe(200);
    expectHeaders(ok.headers, GLOBAL);
  });

  it('sets them on a 400 refusal of a malformed path', async () => {
    // Raw: a WHATWG URL client would resolve %2e%2e itself and send /private.
    const a = await rawRequest(gw.port, 'GET /app/%2e%2e/private HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(a.status).toBe(400);
    expect((JSON.parse(a.body) as { code: string }).code).toBe('GW_ERR_BAD_PATH');
    expectHeaders(a.headers, GLOBAL);
    expectHeaders(a.headers, { 'content-security-policy-report-only': cspWithout("'none'") });
  });

  it('replaces an upstream that tries to send weaker values (X-Frame-Options, HSTS, CSP, …)', async () => {
    const a = await get('/app/weak');
    expect(a.status).toBe(200);
    expectHeaders(a.headers, GLOBAL);
    expect(a.headers['x-legacy']).toBe('kept');
    expect(a.body).toBe('<html></html>');
    // The gateway's policy is report-only there: the app's own enforced CSP passes beside it (a browser
    // enforces each policy on its own, so a second one can only restrict more).
    expect(a.headers['content-security-policy']).toBe(UPSTREAM_CSP);
    reportOnlyToken(a.headers);
    // Enforced (report_only: false): the gateway's CSP replaces the upstream's.
    const e = await get('/enforced/weak');
    expect(e.status).toBe(200);
    expectHeaders(e.headers, GLOBAL);
    const token = /report-uri \/\.zt\/csp-report\/([A-Za-z0-9_-]{22});/.exec(String(e.headers['content-security-policy']))?.[1];
    expect(e.headers['content-security-policy']).toBe(`${defaultCsp("'none'")};report-uri /.zt/csp-report/${token};report-to zt-csp`);
    expect(e.headers['content-security-policy-report-only']).toBeUndefined();
    expect(e.headers['reporting-endpoints']).toBe(`zt-csp="/.zt/csp-report/${token}"`);
  });
});

describe('per-route settings', () => {
  it('overrides key by key: CSP directives, frame options (and frame-ancestors), referrer, COOP, HSTS', async () => {
    const a = await get('/custom/x');
    expect(a.status).toBe(200);
    expectHeaders(a.headers, {
      'strict-transport-security': 'max-age=3600',
      'x-frame-options': 'SAMEORIGIN',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // Not overridden on the route: the top-level value.
      'permissions-policy': 'camera=(), microphone=(), geolocation=()',
      'cross-origin-opener-policy': 'same-origin-allow-popups',
    });
    // report_only: false on the route enforces it there.
    const csp = String(a.headers['content-security-policy']);
    const token = /report-uri \/\.zt\/csp-report\/([A-Za-z0-9_-]{22});/.exec(csp)?.[1];
    expect(csp).toBe(`${defaultCsp("'self'", "'self' https://cdn.example.com")};report-uri /.zt/csp-report/${token};report-to zt-csp`);
    expect(a.headers['content-security-policy-report-only']).toBeUndefined();
  });

  it('report_only sends Content-Security-Policy-Report-Only instead of Content-Security-Policy', async () => {
    const a = await get('/report/x');
    expect(a.status).toBe(200);
    expect(a.headers['content-security-policy']).toBeUndefined();
    expect(a.headers['content-security-policy-report-only']).toBe(
      // upgrade-insecure-requests has no effect in a report-only policy, so it is left out.
      `${cspWithout("'none'")};report-uri /csp-report`,
    );
    expectHeaders(a.headers, GLOBAL);
    expect(a.headers['reporting-endpoints']).toBeUndefined(); // the operator's own report-uri: nothing to the gateway
  });

  it("keep_upstream: [content-security-policy] keeps the upstream's CSP; the other headers are still enforced", async () => {
    const a = await get('/keep/x');
    expect(a.status).toBe(200);
    expect(a.headers['content-security-policy']).toBe(UPSTREAM_CSP);
    expectHeaders(a.headers, GLOBAL);
    reportOnlyToken(a.headers); // the gateway's own (report-only) policy still goes beside it
  });

  it('a header set to false on a route is not sent; the others still are', async () => {
    const a = await get('/off/x');
    expect(a.status).toBe(200);
    for (const h of ['strict-transport-security', 'content-security-policy', 'content-security-policy-report-only', 'reporting-endpoints', 'permissions-policy', 'cross-origin-opener-policy']) {
      expect({ [h]: a.headers[h] }).toEqual({ [h]: undefined });
    }
    expectHeaders(a.headers, { 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff', 'referrer-policy': 'strict-origin-when-cross-origin' });
  });
});
