// The stages between normalize and the terminal, shared by plain requests, WebSocket upgrades and forward-auth.
// admit.ts puts them in order; each returns synchronously when it can (cache hits), a Promise otherwise.
import type { TLSSocket } from 'node:tls';
import { type Identity, GatewayError, headerOf, type Redirect } from '../core/index.ts';
import { type Device, type PolicyInput, usedMfa } from '../authz/index.ts';
import { appendIdentityHeaders } from '../proxy/index.ts';
import type { CompiledRoute, PipelineContext } from './route.ts';
import type { RuntimeState } from './state.ts';
import type { CompiledConfig } from './compile.ts';
import { stripCookies } from '../authn/index.ts';
import { extractParams } from '../routing/index.ts';
import { parseQuerySpellings } from '../normalize/index.ts';

export function resolveRoute(state: RuntimeState, ctx: PipelineContext): CompiledRoute {
  const route = state.compiled.router.match(ctx.host.name, ctx.target.matchPath, ctx.method);
  if (route === undefined) throw new GatewayError('GW_ERR_NO_ROUTE');
  ctx.route = route;
  state.compiled.spelling(route, ctx.host.name, ctx.target, ctx.method);
  return route;
}

/** null for a public route; otherwise the verified identity, or a thrown/rejected GatewayError. */
export function authenticateRequest(route: CompiledRoute, ctx: PipelineContext): Identity | null | Promise<Identity> {
  if (route.public) return null;
  // Default deny: a route that is not public and names no working provider never forwards.
  if (route.authenticate === null) {
    throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'this route requires authentication', {
      headers: [['www-authenticate', 'Bearer realm="zt-gateway"']],
    });
  }
  return route.authenticate({ authorization: ctx.authorization, rawHeaders: ctx.rawHeaders, socket: ctx.connection, ctx });
}

/** A top-level browser navigation (gets a login redirect); XHR, fetch, JSON and non-GET get a 401. */
export function isNavigation(ctx: Pick<PipelineContext, 'method' | 'rawHeaders'>): boolean {
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return false;
  if (headerOf(ctx, 'x-requested-with') !== undefined) return false;
  const mode = headerOf(ctx, 'sec-fetch-mode');
  if (typeof mode === 'string' && mode !== 'navigate') return false;
  const accept = headerOf(ctx, 'accept');
  return typeof accept === 'string' && accept.includes('text/html');
}

function lacksMfa(identity: Identity, acr: string, compiled: CompiledConfig): boolean {
  // `acr: mfa` is also satisfied by an MFA method in amr or an acr the config counts as MFA.
  return identity.acr !== acr && !(acr === 'mfa' && usedMfa(identity, compiled.mfa));
}

/** What a step-up asks for: a login with this acr, and/or one no older than maxAgeS. */
export interface StepUpNeed {
  readonly acr: string | undefined;
  readonly maxAgeS: number | undefined;
  /** Asked because the risk score is above step_up.when.risk_above. */
  readonly byRisk: boolean;
}

/**
 * The one step-up predicate, for the gateway and for `explain`: undefined when this identity already meets
 * the route's step-up (or the route has none, or its risk trigger is not reached).
 */
export function stepUpNeeded(compiled: CompiledConfig, route: CompiledRoute, identity: Identity, riskScore: number | undefined, nowS: number): StepUpNeed | undefined {
  const need = route.stepUp;
  if (need === null) return undefined;
  // A risk step-up (step_up.when.risk_above) applies to any caller, only while the score is above the
  // threshold, and needs a fresh login (max_age, else risk.reauth_window) with the acr.
  const byRisk = need.riskAbove !== undefined;
  if (byRisk && !(riskScore !== undefined && riskScore > (need.riskAbove as number))) return undefined;
  const maxAgeS = need.maxAgeS ?? (byRisk ? compiled.risk?.reauthWindowS : undefined);
  const tooOld = maxAgeS !== undefined && (identity.authTime === undefined || nowS - identity.authTime > maxAgeS);
  const missingAcr = need.acr !== undefined && lacksMfa(identity, need.acr, compiled);
  if (!tooOld && !missingAcr) return undefined;
  return { acr: need.acr, maxAgeS, byRisk };
}

/**
 * Step-up: a session that lacks the route's acr, or whose login is older than max_age, goes back to the
 * IdP (browser) or gets a 401 naming what is missing (RFC 9470) for API calls.
 */
export function stepUp(state: RuntimeState, route: CompiledRoute, ctx: PipelineContext, identity: Identity): Promise<Redirect> | undefined {
  const rp = state.compiled.rp;
  const need = stepUpNeeded(state.compiled, route, identity, ctx.risk?.score, Math.floor(Date.now() / 1000));
  if (need === undefined) return undefined;
  const { byRisk, maxAgeS } = need;
  // Bearer tokens, API keys and certificates cannot be sent back to an IdP: they get the RFC 9470 401 too.
  if (identity.method !== 'session' || rp === null || !isNavigation(ctx)) {
    const params = [
      'Bearer realm="zt-gateway"',
      'error="insufficient_user_authentication"',
      ...(need.acr ? [`acr_values="${need.acr}"`] : []),
      ...(maxAgeS !== undefined ? [`max_age=${maxAgeS}`] : []),
    ];
    throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'this route needs a stronger or more recent login', {
      headers: [['www-authenticate', params.join(', ')]],
      ...(byRisk && need.acr ? { extra: { challenge: need.acr } } : {}),
    });
  }
  return rp.startLogin(ctx, identity.provider, {
    ...(need.acr ? { acr: need.acr } : {}),
    ...(maxAgeS !== undefined ? { maxAgeS } : {}),
    prompt: 'login',
    reason: 'step_up',
  });
}

/**
 * The name a CGI/WSGI-style backend reads for a header: case folded, `_` as `-`, a leading or trailing `_`
 * ignored (`X-Remote-User_` is HTTP_X_REMOTE_USER_, which trimming parsers read as X-Remote-User). The same
 * spellings the identity prefix is stripped in (normalize/headers.ts).
 */
function spellingOf(name: string): string {
  const n = name.toLowerCase().replaceAll('_', '-');
  return n.startsWith('-') || n.endsWith('-') ? n.replace(/^-+|-+$/g, '') : n;
}

/** Drops the route's credential headers and adds verified identity (and the signed assertion). */
export function mutateRequest(
  state: RuntimeState,
  route: CompiledRoute,
  ctx: PipelineContext,
  identity: Identity | null,
): void | Promise<void> {
  const headers = ctx.upstreamHeaders;
  const rp = state.compiled.rp;
  if (rp !== null) stripCookies(headers, rp.cookieName); // the gateway's session never reaches the app
  if (route.dropHeaders.size > 0) {
    let w = 0;
    for (let r = 0; r < headers.length; r += 2) {
      if (route.dropHeaders.has(spellingOf(headers[r] as string))) continue;
      headers[w++] = headers[r] as string;
      headers[w++] = headers[r + 1] as string;
    }
    headers.length = w;
  }
  if (identity === null) return;
  const groups = route.groupsFilter?.apply(identity); // policy saw every group; the upstream gets these
  appendIdentityHeaders(headers, identity, route.identityHeaders, groups);
  if (route.passToken && identity.method === 'session' && rp !== null) {
    // The session authenticated this request, not whatever Authorization the client sent: that one never
    // reaches the app (it would sit next to, or stand in for, the session's own access token).
    let w = 0;
    for (let r = 0; r < headers.length; r += 2) {
      if ((headers[r] as string).toLowerCase() === 'authorization') continue;
      headers[w++] = headers[r] as string;
      headers[w++] = headers[r + 1] as string;
    }
    headers.length = w;
    const token = rp.accessToken(identity);
    if (token !== undefined) headers.push('authorization', `Bearer ${token}`);
  }
  const signer = state.compiled.assertion;
  if (!route.assertion || signer === null) return;
  const token = signer.sign(identity, route.upstream.audience, groups);
  if (typeof token === 'string') {
    headers.push(route.identityHeaders.assertion, token);
    return;
  }
  return token.then((t) => {
    headers.push(route.identityHeaders.assertion, t);
  });
}

/** The caller's device: from a verified client certificate, or a header set by a trusted proxy. */
export function deviceOf(state: RuntimeState, ctx: PipelineContext): Device | undefined {
  const devices = state.compiled.devices;
  if (devices === null) return undefined;
  const socket = ctx.connection as TLSSocket;
  if (typeof socket.getPeerCertificate === 'function' && socket.authorized) {
    const fp = socket.getPeerCertificate().fingerprint256;
    const device = fp ? devices.inventory.byCertificate(fp) : undefined;
    if (device) return device;
  }
  if (devices.header !== undefined && ctx.viaTrustedProxy) {
    const id = headerOf(ctx, devices.header);
    if (typeof id === 'string') return devices.inventory.byId(id);
  }
  return undefined;
}

/** What the route's policy is given for this context (the request path and live re-checks build it alike). */
export function policyInput(state: RuntimeState, route: CompiledRoute, ctx: PipelineContext, device: () => Device | undefined, nowMs: number): PolicyInput {
  const policy = route.policy;
  return {
    identity: ctx.identity,
    method: ctx.method,
    path: ctx.target.matchPath,
    clientIp: ctx.clientIp,
    nowMs,
    device,
    grants: state.access,
    // Closures only for policies that read parameters: the common path allocates nothing more. Segments
    // come from the forwarded path (with any ;params), so `acme;x` is never taken for `acme`.
    params: policy?.usesParams ? once(() => extractParams(route.template, ctx.target.path, route.exact)) : undefined,
    query: policy?.usesParams ? once(() => parseQuerySpellings(ctx.target.query)) : undefined,
    risk: ctx.risk?.score,
  };
}

/**
 * authorize stage: evaluates the route's policy and records the decision on the context. Throws 403 on deny
 * (unless the route is report-only, which forwards and lets the audit record say would_deny).
 */
export function authorizeRequest(state: RuntimeState, route: CompiledRoute, ctx: PipelineContext, device: () => Device | undefined): void {
  if (route.policy === null) return;
  const decision = route.policy.evaluate(policyInput(state, route, ctx, device, Date.now()));
  ctx.decision = decision;
  if (!decision.allow && route.mode === 'enforce') throw new GatewayError('GW_ERR_FORBIDDEN', 'access to this route is denied by policy');
}

/** Computes on the first call only: rules that read the same parameters share one decoding. */
export function once<T>(compute: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value;
  };
}

/** Presented-but-invalid credentials (not a missing login) count towards lockout and the risk signal. */
export function countAuthFailure(state: RuntimeState, ctx: PipelineContext, err: unknown): void {
  const invalid = err instanceof GatewayError && err.code === 'GW_ERR_UNAUTHENTICATED' && err.headers.some(([, v]) => v.includes('error='));
  if (!invalid) return;
  state.limits.recordAuthFailure(ctx, undefined);
  state.risk?.recordFailure(ctx.clientIp, Date.now());
}
