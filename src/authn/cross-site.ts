// Cross-site protection for cookie sessions, after Go 1.25's net/http.CrossOriginProtection: a browser sends
// the session cookie with requests that pages of other origins start (same-site pages even cross-origin,
// since SameSite=Lax only stops other sites), so the apps behind the gateway, which often have no CSRF
// defence of their own, could be ridden. Only requests the session cookie authenticated are judged; bearer,
// API-key and certificate callers present their credential on purpose.
import { type RequestContext, GatewayError, headerOf } from '../core/index.ts';
import type { CorsConfig } from '../config/index.ts';
import { normalizeOrigin } from '../normalize/index.ts';

export interface CrossSitePolicy {
  /** Normalized origins (cross_origin.allow, cors.origins with credentials) whose pages may send them. */
  readonly allow: ReadonlySet<string>;
}

/** null: the route opted out (`cross_origin: { protect: false }`). */
export function compileCrossSite(cfg: { protect: boolean; allow: readonly string[] }, cors: CorsConfig | undefined): CrossSitePolicy | null {
  if (!cfg.protect) return null;
  const allow = new Set<string>();
  const add = (o: string) => {
    const n = normalizeOrigin(o);
    if (n !== undefined) allow.add(n);
  };
  cfg.allow.forEach(add);
  // A CORS origin allowed with credentials is already trusted to call with the user's cookie.
  if (cors?.credentials === true) cors.origins.forEach(add);
  return Object.freeze({ allow });
}

/** No-policy check for the gateway's own endpoints (logout, grants): nothing is allowed cross-site. */
export const NO_EXCEPTIONS: CrossSitePolicy = Object.freeze({ allow: new Set<string>() });

/** GET, HEAD and OPTIONS change nothing (RFC 9110 safe methods); a WebSocket handshake is a GET that does. */
export function isUnsafe(ctx: Pick<RequestContext, 'method' | 'rawHeaders'>): boolean {
  const m = ctx.method;
  if (m !== 'GET' && m !== 'HEAD' && m !== 'OPTIONS') return true;
  return headerOf(ctx, 'upgrade') !== undefined;
}

function refused(detail: string): GatewayError {
  return new GatewayError('GW_ERR_CROSS_SITE', detail);
}

/**
 * Throws GW_ERR_CROSS_SITE when the request may come from a page of another origin: `Sec-Fetch-Site` decides
 * when present (same-origin and none pass), else `Origin` against the request's own origin; a request with
 * neither header is not from a browser and passes. `ownOrigin` is computed only when it is needed.
 */
export function checkCrossSite(policy: CrossSitePolicy, ctx: Pick<RequestContext, 'method' | 'rawHeaders'>, ownOrigin: () => string): void {
  if (!isUnsafe(ctx)) return;
  const site = headerOf(ctx, 'sec-fetch-site');
  const origin = headerOf(ctx, 'origin');
  const listed = origin !== undefined && policy.allow.size > 0 && policy.allow.has(normalizeOrigin(origin) ?? '');
  if (site !== undefined) {
    if (site === 'same-origin' || site === 'none' || listed) return;
    throw refused(`a ${site} request cannot use the session cookie for this method`);
  }
  if (origin === undefined || listed) return;
  const normalized = normalizeOrigin(origin);
  if (normalized !== undefined && normalized === ownOrigin()) return;
  throw refused('a request from another origin cannot use the session cookie for this method');
}
