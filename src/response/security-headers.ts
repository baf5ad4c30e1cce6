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
}

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
export function compileSecurityHeaders(global: SecurityHeadersConfig, route: SecurityHeadersConfig | undefined): SecurityHeaderSet {
  try {
    return headerSet({ ...global, ...(route ?? {}) });
  } catch (err) {
    // helmet refuses bad values (a CSP directive, a referrer policy token) by throwing.
    throw err instanceof ConfigError ? err : new ConfigError('CFG_BAD_VALUE', [], (err as Error).message);
  }
}

function headerSet(cfg: SecurityHeadersConfig): SecurityHeaderSet {
  const headers = new Map<string, string>();

  const hsts = cfg.hsts ?? { max_age: 365 * 86_400_000, include_subdomains: true, preload: false };
  if (hsts !== false) {
    record(
      strictTransportSecurity({ maxAge: Math.round(hsts.max_age / 1000), includeSubDomains: hsts.include_subdomains, preload: hsts.preload }),
      headers,
    );
  }
  const frame = cfg.frame_options ?? 'deny';
  const csp = cfg.csp ?? { report_only: true };
  if (csp !== false) {
    // frame-ancestors follows X-Frame-Options unless the operator sets it.
    const directives: Record<string, string[] | null> =
      frame === false ? {} : { 'frame-ancestors': [frame === 'sameorigin' ? "'self'" : "'none'"] };
    // A report-only policy cannot upgrade requests (browsers ignore it there, with a console error): drop
    // helmet's default upgrade-insecure-requests unless the operator asks for it.
    if (csp.report_only) directives['upgrade-insecure-requests'] = null;
    for (const [k, v] of Object.entries(csp.directives ?? {})) directives[k] = v === true ? [] : v;
    record(
      contentSecurityPolicy({ useDefaults: true, reportOnly: csp.report_only, directives }) as Middleware,
      headers,
    );
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
  });
}
