// A route as the request path sees it: everything resolved at load, nothing parsed per request.
import type { RouteAuthentication } from '../authn/index.ts';
import type { Policy } from '../authz/policy.ts';
import type { CorsPolicy } from '../response/cors.ts';
import type { SecurityHeaderSet } from '../response/security-headers.ts';
import type { IdentityHeaderNames } from '../proxy/identity-headers.ts';
import type { UpstreamTarget } from '../proxy/upstream.ts';
import type { RouteValidator } from '../validate/index.ts';
import { HOST_PATTERN } from '../config/checks.ts';
import { ConfigError, type ConfigReport } from '../config/errors.ts';
import type { RouteConfig } from '../config/schema.ts';
import { canonicalPath } from '../core/path.ts';
import { parseTemplate, type PathTemplate } from './template.ts';

export interface HostMatcher {
  /** Exact lower-case names. */
  readonly exact: readonly string[];
  /** Suffixes of `*.example.com` patterns, stored as '.example.com'. */
  readonly wildcard: readonly string[];
}

export interface CompiledRoute {
  /** Position in the file: earlier routes win. */
  readonly index: number;
  readonly name: string;
  /** null: any host. */
  readonly hosts: HostMatcher | null;
  /** Canonical path prefix without trailing slash ('' for /), or the exact path for `=/x`. */
  readonly path: string;
  readonly exact: boolean;
  /** Named segments (`/tenants/{tenant}`); null for a plain prefix or exact path. */
  readonly template: PathTemplate | null;
  /** null: no `validate` block (bodies stream unbuffered). */
  readonly validator: RouteValidator | null;
  /** null: any method. */
  readonly methods: ReadonlySet<string> | null;
  readonly upstream: UpstreamTarget;
  readonly public: boolean;
  readonly websocket: boolean;
  /** null: public route, or no authentication configured (always 401). */
  readonly authenticate: RouteAuthentication | null;
  readonly providerNames: readonly string[];
  readonly identityHeaders: IdentityHeaderNames;
  readonly assertion: boolean;
  /** Lower-case request headers removed before forwarding (credentials, custom identity header names). */
  readonly dropHeaders: ReadonlySet<string>;
  /** Forward the caller's token upstream (Bearer as received; for sessions, the session's access token). */
  readonly passToken: boolean;
  /** oidc providers on this route, in order: the first starts the login for a browser navigation. */
  readonly loginProviders: readonly string[];
  /** riskAbove: step up only when the request's risk score is above it. */
  readonly stepUp: { acr: string | undefined; maxAgeS: number | undefined; riskAbove?: number | undefined } | null;
  /** The assess stage computes a risk score for this route (risk_above, step_up.when, or risk.all_routes). */
  readonly scoresRisk?: boolean;
  /** null: no authorize block (public routes, or routes that always answer 401). */
  readonly policy: Policy | null;
  /** report-only: decide and audit, but forward anyway. */
  readonly mode: 'enforce' | 'report-only';
  readonly security: SecurityHeaderSet;
  readonly cors: CorsPolicy | null;
  /** When the suspension/revocation state cannot be confirmed: deny (503) or allow on the last known copy. */
  readonly onStateError: 'deny' | 'allow';
}

/** What a route matches, compiled: frozen. */
export type CompiledMatch = Pick<CompiledRoute, 'hosts' | 'path' | 'exact' | 'template' | 'methods'>;

/** `match.host` (one pattern or a list): null for any host; reports bad patterns with `path` under `match`. */
export function compileHostMatcher(host: string | readonly string[] | undefined, report: ConfigReport): HostMatcher | null {
  if (host === undefined) return null;
  const list = typeof host === 'string' ? [host] : host;
  const exact: string[] = [];
  const wildcard: string[] = [];
  list.forEach((h, i) => {
    const lower = h.toLowerCase().replace(/\.$/, '');
    const path = typeof host === 'string' ? ['host'] : ['host', i];
    if (!HOST_PATTERN.test(lower)) report(new ConfigError('CFG_BAD_VALUE', path, `invalid host pattern "${h}" (exact name or *.example.com)`));
    else if (lower.startsWith('*.')) wildcard.push(lower.slice(1));
    else exact.push(lower);
  });
  return Object.freeze({ exact: Object.freeze(exact), wildcard: Object.freeze(wildcard) });
}

/** A route's `match`: hosts, canonical path (or template) and methods. Reports with `path` under `match`. */
export function compileRouteMatch(match: RouteConfig['match'], report: ConfigReport): CompiledMatch {
  const hosts = compileHostMatcher(match.host, report);
  const exact = match.path.startsWith('=');
  let path = '';
  let template: PathTemplate | null = null;
  try {
    const canonical = canonicalPath(exact ? match.path.slice(1) : match.path);
    if (canonical.path !== canonical.matchPath) throw new Error('route paths may not contain ;parameters');
    path = exact ? canonical.path : canonical.path.replace(/\/$/, '');
    template = parseTemplate(path) ?? null;
  } catch (err) {
    report(new ConfigError('CFG_BAD_VALUE', ['path'], `invalid path: ${(err as { detail?: string }).detail ?? (err as Error).message}`));
  }
  return Object.freeze({ hosts, path, exact, template, methods: match.methods ? new Set(match.methods) : null });
}
