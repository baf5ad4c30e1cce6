// Security response headers, computed ONCE per route at load by running helmet's middleware functions
// against a recorder; per request the gateway only merges a precomputed list.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  contentSecurityPolicy,
  crossOriginOpenerPolicy,
  referrerPolicy,
  strictTransportSecurity,
  xContentTypeOptions,
  xFrameOptions,
} from 'helmet';
import { ConfigError, type SecurityHeadersConfig } from '../config/index.ts';

export interface SecurityHeaderSet {
  /** Flat [name, value, …], lower-case names. */
  readonly flat: readonly string[];
  readonly names: ReadonlySet<string>;
  /** Names for which an upstream's own value wins. */
  readonly keepUpstream: ReadonlySet<string>;
  /** The Content-Security-Policy as sent (null: csp: false), for the report endpoint, the admin API and audits. */
  readonly csp?: CompiledCsp | null;
}

export interface CompiledCsp {
  readonly reportOnly: boolean;
  readonly learn: boolean;
  /** The policy's directives as sent, without the gateway's own report-uri/report-to. */
  readonly directives: Readonly<Record<string, readonly string[]>>;
  /** The policy reports to the gateway (`/.zt/csp-report/<token>`): the operator set no report-uri/report-to. */
  readonly reportsToGateway: boolean;
}

/** Where a route's policy reports; the token is put in per route by `withCspReportToken`. */
export const CSP_REPORT_PREFIX = '/.zt/csp-report/';
const TOKEN_PLACEHOLDER = '__zt_csp_token__';
/** The Reporting API endpoint name in `report-to` and `Reporting-Endpoints`. */
export const CSP_REPORT_GROUP = 'zt-csp';

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

const DEFAULT_PERMISSIONS_POLICY =
  'accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()';

/** Runs a helmet middleware against a header recorder (helmet only calls setHeader/removeHeader). */
function record(mw: Middleware, into: Map<string, string>): void {
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      into.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value));
    },
    removeHeader(name: string) {
      into.delete(name.toLowerCase());
    },
  } as unknown as ServerResponse;
  let failed: unknown;
  mw({} as IncomingMessage, res, (err) => (failed = err));
  if (failed) throw new ConfigError('CFG_BAD_VALUE', [], `security_headers: ${(failed as Error).message ?? String(failed)}`);
}

/**
 * Route settings override the top-level ones key by key. Frozen (the sets are never changed). Throws
 * ConfigError with `path` relative to the security_headers block.
 */
export function compileSecurityHeaders(global: SecurityHeadersConfig, route: SecurityHeadersConfig | undefined, reports = false): SecurityHeaderSet {
  try {
    return headerSet({ ...global, ...(route ?? {}), csp: mergeCsp(global.csp, route?.csp) }, reports);
  } catch (err) {
    // helmet refuses bad values (a CSP directive, a referrer policy token) by throwing.
    throw err instanceof ConfigError ? err : new ConfigError('CFG_BAD_VALUE', [], (err as Error).message);
  }
}

type CspConfig = SecurityHeadersConfig['csp'];

/** A route's csp is merged over the top-level one field by field, its directives name by name. */
function mergeCsp(global: CspConfig, route: CspConfig): CspConfig {
  if (route === undefined) return global;
  if (route === false || global === undefined || global === false) return route;
  return { ...global, ...route, directives: { ...(global.directives ?? {}), ...(route.directives ?? {}) } };
}

/**
 * The set for one route: its report token put into report-uri, report-to's endpoint and Reporting-Endpoints.
 * A set compiled without `reports` (or whose operator named their own report-uri) is returned as is.
 */
export function withCspReportToken(set: SecurityHeaderSet, token: string): SecurityHeaderSet {
  if (!set.csp?.reportsToGateway) return set;
  return Object.freeze({ ...set, flat: Object.freeze(set.flat.map((v) => v.replaceAll(TOKEN_PLACEHOLDER, token))) });
}

function headerSet(cfg: SecurityHeadersConfig, reports: boolean): SecurityHeaderSet {
  const headers = new Map<string, string>();

  const hsts = cfg.hsts ?? { max_age: 365 * 86_400_000, include_subdomains: true, preload: false };
  if (hsts !== false) {
    record(
      strictTransportSecurity({ maxAge: Math.round(hsts.max_age / 1000), includeSubDomains: hsts.include_subdomains, preload: hsts.preload }),
      headers,
    );
  }
  const frame = cfg.frame_options ?? 'deny';
  // Report-only by default (README "Content-Security-Policy"): a strict policy must not blank an app's pages.
  const csp = cfg.csp ?? {};
  let compiledCsp: CompiledCsp | null = null;
  if (csp !== false) {
    const reportOnly = csp.report_only ?? true;
    // frame-ancestors follows X-Frame-Options unless the operator sets it.
    const directives: Record<string, string[] | null> =
      frame === false ? {} : { 'frame-ancestors': [frame === 'sameorigin' ? "'self'" : "'none'"] };
    // A report-only policy cannot upgrade requests (browsers ignore it there, with a console error): drop
    // helmet's default upgrade-insecure-requests unless the operator asks for it.
    if (reportOnly) directives['upgrade-insecure-requests'] = null;
    for (const [k, v] of Object.entries(csp.directives ?? {})) directives[k] = v === true ? [] : v;
    const own = Object.keys(directives).some((k) => k.toLowerCase() === 'report-uri' || k.toLowerCase() === 'report-to');
    const policy = new Map<string, string>();
    record(contentSecurityPolicy({ useDefaults: true, reportOnly, directives }) as Middleware, policy);
    const name = reportOnly ? 'content-security-policy-report-only' : 'content-security-policy';
    const value = policy.get(name) ?? '';
    const reportsToGateway = reports && !own;
    headers.set(name, reportsToGateway ? `${value};report-uri ${CSP_REPORT_PREFIX}${TOKEN_PLACEHOLDER};report-to ${CSP_REPORT_GROUP}` : value);
    if (reportsToGateway) headers.set('reporting-endpoints', `${CSP_REPORT_GROUP}="${CSP_REPORT_PREFIX}${TOKEN_PLACEHOLDER}"`);
    compiledCsp = Object.freeze({ reportOnly, learn: csp.learn ?? false, directives: parseDirectives(value), reportsToGateway });
  }
  if (frame !== false) record(xFrameOptions({ action: frame }), headers);
  record(xContentTypeOptions(), headers);
  const referrer = cfg.referrer_policy ?? 'no-referrer';
  if (referrer !== false) {
    type Policy = NonNullable<NonNullable<Parameters<typeof referrerPolicy>[0]>['policy']>;
    record(referrerPolicy({ policy: referrer.split(',').map((p) => p.trim()) as unknown as Policy }), headers);
  }
  const coop = cfg.cross_origin_opener_policy ?? 'same-origin';
  if (coop !== false) record(crossOriginOpenerPolicy({ policy: coop }), headers);
  const permissions = cfg.permissions_policy ?? DEFAULT_PERMISSIONS_POLICY;
  if (permissions !== false) headers.set('permissions-policy', permissions);

  const flat: string[] = [];
  for (const [k, v] of headers) flat.push(k, v);
  return Object.freeze({
    flat: Object.freeze(flat),
    names: new Set(headers.keys()),
    keepUpstream: new Set((cfg.keep_upstream ?? []).map((h) => h.toLowerCase())),
    csp: compiledCsp,
  });
}

/** `a b;c` → { a: [b], c: [] } (helmet's output: `;` between directives, one space between values). */
function parseDirectives(value: string): Record<string, readonly string[]> {
  const out: Record<string, readonly string[]> = {};
  for (const part of value.split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out[name] = Object.freeze(values);
  }
  return Object.freeze(out);
}
