// Judges a live connection (an upgraded WebSocket, a response still streaming) against the current state, as a
// new request with the same context would be judged: its route (looked up by name in the running config, so a
// reload's policy applies), the credential's expiry, the access state (suspension, revoked token, key or
// device) and the route's policy (groups, time windows, just-in-time grants). Called on events and by a
// ticker, never per frame. A stale access-state copy is not a reason: only a change that is known is.
import { GatewayError, type Decision, type Identity } from '../core/index.ts';
import type { Device } from '../authz/index.ts';
import type { EndReason, LiveKind } from '../live/index.ts';
import { assessAccess, grantState, type AccessStore } from '../state/index.ts';
import type { OidcSession, SessionEnd } from '../authn/index.ts';
import { deviceOf, once, policyInput } from './chain.ts';
import type { CompiledConfig } from './compile.ts';
import type { CompiledRoute, PipelineContext } from './route.ts';
import type { RuntimeState } from './state.ts';

const byName = new WeakMap<CompiledConfig, ReadonlyMap<string, CompiledRoute>>();

/** The running config's route of that name (one map per config generation, built on first use). */
export function routeNamed(compiled: CompiledConfig, name: string): CompiledRoute | undefined {
  let m = byName.get(compiled);
  if (m === undefined) byName.set(compiled, (m = new Map(compiled.routes.map((r) => [r.name, r]))));
  return m.get(name);
}

/** The stale-copy rule of a new request does not apply: a live connection ends on what is known, not on doubt. */
const KNOWN_STATE_ONLY = { onStateError: 'allow' } as const;

/** The access-state refusal a new request would get, as an end reason. */
function accessReason(access: AccessStore, identity: Identity, device: () => Device | undefined): EndReason | undefined {
  try {
    assessAccess(access, KNOWN_STATE_ONLY, identity, device);
    return undefined;
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    if (err.code === 'GW_ERR_SUSPENDED') return 'suspended';
    // A revoked token or API key (401) or a revoked device (403).
    if (err.code === 'GW_ERR_UNAUTHENTICATED' || err.code === 'GW_ERR_FORBIDDEN') return 'revoked';
    return undefined;
  }
}

/** A denial that needs a grant the connection no longer has: revoked since it opened, or expired. */
function grantReason(access: AccessStore, identity: Identity, openedAt: number, nowMs: number): EndReason {
  for (const g of access.list('grants').values()) {
    if (g.subject !== identity.subject || g.provider !== identity.provider) continue;
    if (grantState(g, nowMs) === 'revoked' && (g.revokedAt ?? 0) >= openedAt) return 'revoked';
  }
  return 'expired';
}

function denyReason(access: AccessStore, identity: Identity | null, admitted: Decision | null, denied: Decision, openedAt: number, nowMs: number): EndReason {
  const rule = admitted?.allow === true ? admitted.rule : undefined;
  const lostGrant = denied.reasons.some((r) => r.reason === 'grant-required' && (rule === undefined || r.rule === rule));
  return lostGrant && identity !== null ? grantReason(access, identity, openedAt, nowMs) : 'policy';
}

/**
 * Why the connection must end now, or undefined when a new request with its context would still be admitted.
 * `nowMs`: the gateway's clock (token expiry, time windows, grants).
 */
export function judgeLive(state: RuntimeState, ctx: PipelineContext, kind: LiveKind, openedAt: number, nowMs: number): EndReason | undefined {
  const admitted = ctx.route;
  if (admitted === undefined) return undefined;
  const route = routeNamed(state.compiled, admitted.name);
  // Removed or renamed by a reload, or no longer open to WebSockets.
  if (route === undefined || (kind === 'websocket' && !route.websocket)) return 'policy';
  if (route.public) return undefined;
  const identity = ctx.identity;
  if (identity === null || route.authenticate === null || !route.providerNames.includes(identity.provider)) return 'policy';
  if (identity.expiresAt !== undefined && nowMs >= identity.expiresAt * 1000) return 'expired';
  const device = once((): Device | undefined => deviceOf(state, ctx));
  const refused = accessReason(state.access, identity, device);
  if (refused !== undefined) return refused;
  if (route.policy === null) return undefined;
  const decision = route.policy.evaluate(policyInput(state, route, ctx, device, nowMs));
  if (decision.allow || route.mode !== 'enforce') return undefined;
  return denyReason(state.access, identity, ctx.decision, decision, openedAt, nowMs);
}

/** Whether the route's decision can turn by the clock alone (time windows, grants): judged by the ticker. */
export function judgedByClock(state: RuntimeState, ctx: PipelineContext): boolean {
  const name = ctx.route?.name;
  return name !== undefined && routeNamed(state.compiled, name)?.policy?.usesClock === true;
}

/** Whether an announced session end covers this session. */
export function sessionEndCovers(end: SessionEnd, s: OidcSession): boolean {
  if (end.login !== undefined && end.login === s.login) return true; // login.host: a fleet logout
  if (end.provider !== s.provider) return false;
  if (end.id !== undefined && end.id === s.id) return true;
  if (end.sid !== undefined && end.sid === s.sid) return true;
  return end.sub !== undefined && end.sub === s.sub && (end.before === undefined || s.createdAt <= end.before);
}
