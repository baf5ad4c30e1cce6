// A route as the request path sees it: everything resolved at load, nothing parsed per request.
import type { RouteAuthentication } from '../authn/index.ts';
import type { Policy } from '../authz/policy.ts';
import type { CorsPolicy } from '../response/cors.ts';
import type { SecurityHeaderSet } from '../response/security-headers.ts';
import type { IdentityHeaderNames } from '../proxy/identity-headers.ts';
import type { UpstreamTarget } from '../proxy/upstream.ts';
import type { RouteValidator } from '../validate/index.ts';
import type { PathTemplate } from './template.ts';

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
