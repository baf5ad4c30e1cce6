// Turns one finished request into metric updates. Called where the audit record is written (the handler's
// and the upgrade handler's close), so metrics and audit always describe the same requests.
import { type Identity, type RequestContext, GatewayError, Redirect } from '../core/index.ts';
import { decisionKind } from '../audit/index.ts';
import { usedMfa, type MfaSets } from '../authz/index.ts';
import { limitKind } from '../ratelimit/index.ts';
import type { DecisionLabel, LimitLabel, Metrics } from './metrics.ts';

/** What the handler learnt about a request besides its context and status. */
export interface RequestFacts {
  code: string | undefined;
  limit?: LimitLabel | undefined;
  stepUp?: boolean;
  /** Set only when the upstream answered and the response was streamed to its end. */
  upstreamSeconds?: number | undefined;
}

/** Classifies the error that ended a request: which rate limit, or a step-up (redirect or RFC 9470 401). */
export function factsFromError(err: unknown, facts: RequestFacts): void {
  if (err instanceof Redirect) {
    facts.stepUp = err.reason === 'step_up';
    return;
  }
  facts.limit = limitKind(err);
  if (err instanceof GatewayError && err.code === 'GW_ERR_UNAUTHENTICATED') {
    facts.stepUp = err.headers.some(([, v]) => v.includes('insufficient_user_authentication'));
  }
}

/**
 * A service call: a workload, not a person — an identity with a SPIFFE ID or one proven by a client
 * certificate or an API key. It went over mTLS when the client certificate is what authenticated it.
 */
export function isServiceCall(id: Identity): boolean {
  return id.spiffeId !== undefined || id.method === 'mtls' || id.method === 'api_key';
}

/**
 * `method`: the request's (ctx.method, or the raw one when normalize refused the request); `seconds`: from
 * the request's start to its response's end (for an upgrade, to the 101 or the refusal).
 */
export function recordRequest(
  metrics: Metrics,
  mfa: MfaSets,
  ctx: RequestContext | undefined,
  status: number,
  facts: RequestFacts,
  method: string | undefined,
  seconds: number,
): void {
  const name = ctx?.route?.name ?? 'none';
  const route = metrics.route(name);
  metrics.request(route, status, name);
  metrics.requestDuration(route, name, method, status, seconds);
  if (facts.upstreamSeconds !== undefined) route.upstream.observe(facts.upstreamSeconds);
  if (facts.limit !== undefined) metrics.rateLimited(facts.limit);

  const kind = decisionKind(ctx, facts.code);
  // no_route and refused (bad requests, unknown hosts) are not access decisions: requests_total has them.
  if (kind !== 'no_route' && kind !== 'refused') {
    let decision: DecisionLabel = kind;
    let reason: string;
    if (kind === 'rate_limited') reason = 'rate-limited';
    else if (kind === 'rejected' || kind === 'would_reject') reason = 'validation-failed';
    else if (kind === 'unauthenticated') {
      if (facts.stepUp) decision = 'step_up';
      reason = facts.stepUp ? 'step-up-required' : 'unauthenticated';
    } else reason = ctx?.decision?.reasons[0]?.reason ?? (kind === 'public' ? 'public-route' : 'authenticated');
    metrics.decision(route, name, decision, reason);
  }

  const id = ctx?.identity;
  if (id === null || id === undefined) return;
  metrics.authenticated(id.method, usedMfa(id, mfa));
  if (!isServiceCall(id)) return;
  metrics.serviceCall(id.method === 'mtls');
  if (kind === 'deny') route.serviceDenied.n++;
}
