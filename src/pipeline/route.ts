// A route as the orchestrator holds it: every step's compiled part, resolved at load, nothing parsed per request.
import type { CrossSitePolicy, RouteAuthentication } from '../authn/index.ts';
import type { BodyParamGuard, Policy } from '../authz/index.ts';
import type { CorsPolicy, SecurityHeaderSet } from '../response/index.ts';
import type { GroupsFilter, HeaderMutation, IdentityHeaderNames, ResponseEdit, UpstreamTarget } from '../proxy/index.ts';
import type { RouteValidator } from '../validate/index.ts';
import type { RequestContext, RouteRef } from '../core/index.ts';
import type { PathSpelling, RoutableRoute } from '../routing/index.ts';


export interface CompiledRoute extends RoutableRoute, RouteRef {
  /** How the upstream's app reads paths (case folding, %3B): checked right after routing. */
  readonly spelling: PathSpelling;
  /** null: no `validate` block (bodies stream unbuffered). */
  readonly validator: RouteValidator | null;
  /**
   * Routes whose (enforced) policy reads query parameters and that do not validate the body: refuses a form or
   * multipart body that names one of them (frameworks merge it with the query). null: bodies stream as received.
   */
  readonly bodyParams: BodyParamGuard | null;
  readonly upstream: UpstreamTarget;
  /** request_headers { set, remove }; null: none. */
  readonly requestHeaders: HeaderMutation | null;
  /** response_headers and the Location / Set-Cookie mapping of a prefix rewrite; undefined: none. */
  readonly responseEdit: ResponseEdit | undefined;
  readonly websocket: boolean;
  /** ms after the upstream's 101 at which a WebSocket is ended (`lifetime`); null: no limit. */
  readonly websocketLifetime: number | null;
  /** null: public route, or no authentication configured (always 401). */
  readonly authenticate: RouteAuthentication | null;
  readonly providerNames: readonly string[];
  readonly identityHeaders: IdentityHeaderNames;
  /** identity_headers.groups_filter (the route's, else the global one); null: every group, as they come. */
  readonly groupsFilter: GroupsFilter | null;
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
  readonly security: SecurityHeaderSet;
  /** The token of this route's CSP report endpoint (`/.zt/csp-report/<token>`); null: its policy reports elsewhere or is off. */
  readonly cspToken: string | null;
  /** `security_headers.csp.learn`: hash the inline scripts and styles of the HTML pages relayed for it. */
  readonly cspLearn: boolean;
  readonly cors: CorsPolicy | null;
  /** Cross-site protection of cookie sessions; null: `cross_origin: { protect: false }`. */
  readonly crossSite: CrossSitePolicy | null;
  /** When the suspension/revocation state cannot be confirmed: deny (503) or allow on the last known copy. */
  readonly onStateError: 'deny' | 'allow';
  /** Allow rules (by label) that require a just-in-time grant, with the grants that satisfy them. */
  readonly grantRules: ReadonlyMap<string, readonly string[]>;
}

/** The context as the orchestrator sees it: its route is the full compiled route. */
export type PipelineContext = RequestContext<CompiledRoute>;
