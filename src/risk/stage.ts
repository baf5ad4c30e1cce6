// The assess stage (DESIGN.md §1, between authenticate and authorize): the risk score, called only for
// routes that score risk (chain.ts checks route.scoresRisk), so other routes pay nothing here.
import { type Identity, headerOf, type RequestContext } from '../core/index.ts';
import type { Device } from '../authz/index.ts';
import type { RiskEngine, RiskResult } from './engine.ts';

export function assessRisk(
  engine: RiskEngine | null,
  ctx: RequestContext,
  identity: Identity,
  device: () => Device | undefined,
): void | Promise<void> {
  if (engine === null) return;
  const ua = headerOf(ctx, 'user-agent');
  const result = engine.assess(identity, { clientIp: ctx.clientIp, deviceId: device()?.id, userAgent: ua, nowMs: Date.now() });
  if (!(result instanceof Promise)) {
    ctx.risk = result;
    return;
  }
  return result.then((r: RiskResult) => {
    ctx.risk = r;
  });
}

/** After authorize: an admitted request (allowed, not challenged) teaches the subject's profile. */
export function learnRisk(engine: RiskEngine | null, ctx: RequestContext): void {
  if (engine === null || ctx.risk === undefined || ctx.decision?.allow === false) return;
  engine.learn(ctx.risk as RiskResult); // only this stage sets ctx.risk, always to a RiskResult
}
