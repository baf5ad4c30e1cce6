// One route compiled by the steps that own its parts: routing (match), proxy (upstream, identity headers),
// authn (authenticate, step_up), authz (authorize), response (security headers, CORS), validate, risk.
// Every part is compiled even after a failure, so one run reports every problem of the route.
import { compileCrossSite, compileRouteAuth, compileStepUp, type CompiledProviders, type Authenticator } from '../authn/index.ts';
import { type MfaSets, compileRoutePolicy, createBodyParamGuard } from '../authz/index.ts';
import { ConfigError, type ConfigReport, type KeyPath, type Config, type RouteConfig } from '../config/index.ts';
import { compileHeaderMutation, compileIdentityHeaders, compileUpstream, groupsFilterFor } from '../proxy/index.ts';
import { compileCors, compileSecurityHeaders, cspReportToken, withCspReportToken, type CspTokenKey, type SecurityHeaderSet } from '../response/index.ts';
import { compileRouteRisk, type RiskSettings } from '../risk/index.ts';
import { compileRouteMatch } from '../routing/index.ts';
import type { CompiledRoute } from './route.ts';
import type { RouteValidatorCompiler } from '../validate/index.ts';

/** What every route's compile reads: compiled once per config. */
export interface RouteContext {
  readonly config: Config;
  readonly baseDir: string;
  readonly providers: CompiledProviders;
  /** Custom identity header names of every route (proxy/identity-headers.ts customIdentityHeaders). */
  readonly customNames: ReadonlySet<string>;
  readonly mfa: MfaSets;
  readonly grantNames: ReadonlySet<string>;
  readonly security: SecurityHeaderSet;
  /** The top-level headers compiled for routes: the CSP reports to the gateway (token put in per route). */
  readonly routeSecurity: SecurityHeaderSet;
  readonly cspKey: CspTokenKey;
  readonly risk: RiskSettings | null;
  /** The validation compiler, loaded when some route has `validate:` (null: none has). */
  readonly compileValidator: RouteValidatorCompiler | null;
}

/** A report that moves errors under `prefix`. */
export function under(report: ConfigReport, prefix: KeyPath): ConfigReport {
  return (err, silent) => report(err.within(prefix), silent);
}

/** Runs a step that throws ConfigError; reports it (under `prefix`) and returns undefined instead. */
export function attempt<T>(report: ConfigReport, prefix: KeyPath, step: () => T): T | undefined {
  try {
    return step();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    report(err.within(prefix));
    return undefined;
  }
}

/** `attempt` for an asynchronous step. */
export async function attemptAsync<T>(report: ConfigReport, prefix: KeyPath, step: () => Promise<T>): Promise<T | undefined> {
  try {
    return await step();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    report(err.within(prefix));
    return undefined;
  }
}

/** The routes in file order (frozen); reports with `path` from the config root. */
export function compileRoutes(ctx: RouteContext, report: ConfigReport): readonly CompiledRoute[] {
  const names = new Set<string>();
  const routes: CompiledRoute[] = [];
  ctx.config.routes.forEach((r, index) => {
    const at = under(report, ['routes', index]);
    if (names.has(r.name)) at(new ConfigError('CFG_DUPLICATE', ['name'], `duplicate route name "${r.name}"`));
    names.add(r.name);
    const route = compileRoute(r, index, ctx, at);
    if (route) routes.push(route);
  });
  return Object.freeze(routes);
}

/** One route (frozen), or undefined when some part failed; reports with `path` relative to the route. */
export function compileRoute(r: RouteConfig, index: number, ctx: RouteContext, report: ConfigReport): CompiledRoute | undefined {
  let failed = false;
  const at: ConfigReport = (err, silent) => {
    failed = true;
    if (!silent) report(err);
  };
  const match = compileRouteMatch(r.match, under(at, ['match']));
  const upstream = attempt(at, ['upstream'], () => compileUpstream(r.upstream, ctx.baseDir, r.match.path));
  if (failed || upstream === undefined) return undefined;
  const auth = compileRouteAuth(r, ctx.providers, at);
  const identityHeaders = compileIdentityHeaders(r.identity_headers, ctx.config.identity_headers.prefix, under(at, ['identity_headers']));
  const stepUp = attempt(at, [], () => compileStepUp(r.step_up, auth.providers)) ?? null;
  const policy = compileRoutePolicy(r, { routePath: match.path, routeParams: match.template?.names ?? [], mfa: ctx.mfa, grants: ctx.grantNames }, !!ctx.config.devices, at);
  const routeSet = r.security_headers
    ? attempt(at, ['security_headers'], () => compileSecurityHeaders(ctx.config.security_headers, r.security_headers, true))
    : ctx.routeSecurity;
  const cspToken = routeSet?.csp?.reportsToGateway ? cspReportToken(ctx.cspKey, r.name) : null;
  const security = routeSet && cspToken !== null ? withCspReportToken(routeSet, cspToken) : routeSet;
  const cors = r.cors ? compileCors(r.cors) : null;
  const validate = r.validate;
  const compileValidator = ctx.compileValidator;
  const validator = validate && compileValidator ? (attempt(at, [], () => compileValidator(validate, match, r.mode, ctx.baseDir)) ?? null) : null;
  const scoresRisk = attempt(at, [], () => compileRouteRisk(r, ctx.risk)) ?? false;
  const headerContext = { identityPrefix: ctx.config.identity_headers.prefix.toLowerCase(), customNames: ctx.customNames, securityNames: security?.names ?? new Set<string>() };
  const requestHeaders = attempt(at, [], () => compileHeaderMutation(r.request_headers, 'request_headers', headerContext));
  const responseMutation = attempt(at, [], () => compileHeaderMutation(r.response_headers, 'response_headers', headerContext));
  if (failed || security === undefined || requestHeaders === undefined || responseMutation === undefined) return undefined;
  const responseEdit =
    responseMutation === null && upstream.rewrite === null
      ? undefined
      : Object.freeze({ mutation: responseMutation, rewrite: upstream.rewrite, origins: new Set(upstream.endpoints.map((e) => e.origin)) });
  return Object.freeze({
    index,
    name: r.name,
    ...match,
    upstream,
    requestHeaders,
    responseEdit,
    // The app behind the upstream: its endpoints' origins (one origin for `url:`), in a fixed order.
    spelling: Object.freeze({ origin: upstream.endpoints.map((e) => e.origin).sort().join(' '), caseInsensitive: r.upstream.case_insensitive, allowEncodedSemicolon: r.upstream.allow_encoded_semicolon }),
    public: r.public,
    websocket: r.websocket !== false,
    websocketLifetime: typeof r.websocket === 'object' ? (r.websocket.max_lifetime ?? null) : null,
    authenticate: auth.authenticate,
    providerNames: Object.freeze(auth.providers.map((p) => p.name)),
    identityHeaders,
    groupsFilter: groupsFilterFor(r.identity_headers.groups_filter, ctx.config.identity_headers.groups_filter),
    assertion: r.identity_headers.assertion ?? ctx.config.identity_headers.assertion,
    dropHeaders: dropHeaders(ctx.customNames, auth.providers, r.identity_headers.pass_token),
    passToken: r.identity_headers.pass_token,
    loginProviders: Object.freeze(auth.providers.filter((p) => p.type === 'oidc').map((p) => p.name)),
    stepUp,
    scoresRisk,
    policy,
    mode: r.mode,
    security,
    cspToken,
    cspLearn: security.csp?.learn ?? false,
    cors,
    crossSite: compileCrossSite(r.cross_origin, r.cors),
    validator,
    // A validated body is checked against its schema instead; report-only routes forward whatever they decide.
    bodyParams: policy !== null && policy.queryParams.size > 0 && validator === null && r.mode === 'enforce' ? createBodyParamGuard(policy.queryParams) : null,
    onStateError: r.on_state_error,
    grantRules: grantRules(r),
  });
}

/** Allow rules that require a just-in-time grant, by label: a 403 page offers to request one of these. */
function grantRules(r: RouteConfig): ReadonlyMap<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  (r.authorize?.allow ?? []).forEach((rule, i) => {
    if (rule.grant === undefined) return;
    out.set(rule.name ?? `allow[${i}]`, Object.freeze(Array.isArray(rule.grant) ? [...rule.grant] : [rule.grant]));
  });
  return out;
}

/** Request headers removed before forwarding: custom identity names, and the credentials the providers read. */
function dropHeaders(customNames: ReadonlySet<string>, providers: readonly Authenticator[], passToken: boolean): ReadonlySet<string> {
  const drop = new Set<string>(customNames);
  for (const p of providers) for (const c of p.consumes) if (!passToken || c !== 'authorization') drop.add(c);
  return drop;
}
