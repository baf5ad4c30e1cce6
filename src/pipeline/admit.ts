// admit: the ordered steps between route and terminal (DESIGN.md §1), compiled once per route into a flat
// list, as undici composes interceptors and fastify runs hooks:
//   limit (pre) + lockout → authenticate → cross-site → access → risk → step-up → authorize → limit (route) → mutate.
// A step either continues (undefined), ends the request with an outcome (a redirect to the IdP), or throws a
// GatewayError. Steps that do not apply to a route are not in its list; the common path allocates no promise.
import { GatewayError, Redirect } from '../core/index.ts';
import type { Device } from '../authz/index.ts';
import { checkCrossSite } from '../authn/index.ts';
import { assessRisk, learnRisk } from '../risk/index.ts';
import { assessAccess } from '../state/index.ts';
import { authenticateRequest, authorizeRequest, countAuthFailure, deviceOf, isNavigation, mutateRequest, once, stepUp } from './chain.ts';
import type { CompiledRoute, PipelineContext } from './route.ts';
import type { RuntimeState } from './state.ts';

/** What one request's steps share: the state it holds, its route and context, its device (looked up once). */
export interface Admission {
  readonly state: RuntimeState;
  readonly route: CompiledRoute;
  readonly ctx: PipelineContext;
  readonly device: () => Device | undefined;
}

/** undefined: go on to the next step. A Redirect: answer it instead of the terminal. */
export type StepResult = Redirect | undefined | Promise<Redirect | undefined>;
/** A step may also return a Promise of anything else (a limit's wait): it means go on once it settles. */
export type Step = (a: Admission) => Redirect | undefined | Promise<unknown>;

function limitsBefore(a: Admission): Promise<unknown> | undefined {
  const pre = a.state.limits.preAuth(a.ctx);
  const lockout = a.route.public ? undefined : a.state.limits.checkLockout(a.ctx);
  if (lockout === undefined) return pre;
  return pre === undefined ? lockout : Promise.all([pre, lockout]);
}

/** No credentials on a route with an OIDC provider, from a browser navigation: log in instead of a 401. */
function loginInstead(a: Admission, err: unknown): Promise<Redirect> | undefined {
  const rp = a.state.compiled.rp;
  const provider = a.route.loginProviders[0];
  if (rp === null || provider === undefined || !(err instanceof GatewayError) || err.code !== 'GW_ERR_UNAUTHENTICATED') return undefined;
  if (err.headers.some(([, v]) => v.includes('error=')) || !isNavigation(a.ctx)) return undefined;
  return rp.startLogin(a.ctx, provider, { reason: 'login' });
}

function authFailed(a: Admission, err: unknown): Promise<Redirect> {
  countAuthFailure(a.state, a.ctx, err);
  const login = loginInstead(a, err);
  if (login) return login;
  throw err;
}

function authenticate(a: Admission): StepResult {
  let identity;
  try {
    identity = authenticateRequest(a.route, a.ctx);
  } catch (err) {
    return authFailed(a, err);
  }
  if (!(identity instanceof Promise)) {
    a.ctx.identity = identity;
    return undefined;
  }
  return identity.then(
    (id) => {
      a.ctx.identity = id;
      return undefined;
    },
    (err: unknown) => authFailed(a, err),
  );
}

/**
 * A session cookie rides along with requests other origins' pages start: unsafe methods and upgrades it
 * authenticated must come from the gateway's own origin (README "Cross-site protection").
 */
function crossSite(a: Admission): undefined {
  const policy = a.route.crossSite;
  if (policy !== null && a.ctx.identity?.method === 'session') {
    const ctx = a.ctx;
    checkCrossSite(policy, ctx, () => a.state.compiled.publicOrigins.originOf(ctx));
  }
  return undefined;
}

/** Local lookups first: a suspended or revoked caller (or stale state) is refused before any risk I/O. */
function access(a: Admission): undefined {
  if (a.ctx.identity !== null) assessAccess(a.state.access, a.route, a.ctx.identity, a.device);
  return undefined;
}

function risk(a: Admission): Promise<void> | undefined {
  return a.ctx.identity === null ? undefined : (assessRisk(a.state.risk, a.ctx, a.ctx.identity, a.device) ?? undefined);
}

function stepUpIfNeeded(a: Admission): Promise<Redirect> | undefined {
  return a.ctx.identity === null ? undefined : stepUp(a.state, a.route, a.ctx, a.ctx.identity);
}

function authorize(a: Admission): undefined {
  authorizeRequest(a.state, a.route, a.ctx, a.device);
  return undefined;
}

function routeLimit(a: Admission): Promise<void> | undefined {
  return a.state.limits.route(a.route, a.ctx, a.ctx.identity);
}

function mutate(a: Admission): Promise<void> | undefined {
  learnRisk(a.state.risk, a.ctx); // admitted: past authorize and the route's rate limit
  return mutateRequest(a.state, a.route, a.ctx, a.ctx.identity) ?? undefined;
}

/** The route's steps, in the fixed order; built once per compiled route. */
export function compileAdmission(route: CompiledRoute): readonly Step[] {
  const steps: Step[] = [limitsBefore];
  if (!route.public) steps.push(authenticate);
  if (!route.public && route.crossSite !== null && route.loginProviders.length > 0) steps.push(crossSite);
  if (!route.public) steps.push(access);
  // Routes that do not score risk skip that part of the assess stage entirely.
  if (!route.public && route.scoresRisk === true) steps.push(risk);
  if (!route.public && route.stepUp !== null) steps.push(stepUpIfNeeded);
  if (route.policy !== null) steps.push(authorize);
  steps.push(routeLimit, mutate);
  return Object.freeze(steps);
}

const compiledSteps = new WeakMap<CompiledRoute, readonly Step[]>();

function stepsOf(route: CompiledRoute): readonly Step[] {
  let steps = compiledSteps.get(route);
  if (steps === undefined) compiledSteps.set(route, (steps = compileAdmission(route)));
  return steps;
}

function run(steps: readonly Step[], a: Admission, from: number): Redirect | undefined | Promise<Redirect | undefined> {
  for (let i = from; i < steps.length; i++) {
    const result = (steps[i] as Step)(a);
    if (result === undefined) continue;
    if (result instanceof Promise) return result.then((r) => (r instanceof Redirect ? r : run(steps, a, i + 1)));
    return result;
  }
  return undefined;
}

/** Builds every route's step list now (at load), so no request pays for it. */
export function prepareAdmission(routes: readonly CompiledRoute[]): void {
  for (const r of routes) stepsOf(r);
}

/**
 * Runs the route's steps on the context. Resolves to undefined when the request may go to its terminal (the
 * identity is on ctx.identity), or to the Redirect to answer instead; a refusal is a thrown GatewayError.
 */
export function admit(state: RuntimeState, route: CompiledRoute, ctx: PipelineContext): Redirect | undefined | Promise<Redirect | undefined> {
  // The caller's device, looked up at most once per request (certificate and inventory), when a step asks.
  const device = once((): Device | undefined => deviceOf(state, ctx));
  return run(stepsOf(route), { state, route, ctx, device }, 0);
}
