// One structured record per decision (DESIGN.md §1 "audit"): who asked for what, what was decided and why.
// To the main log stream (stdout) by default, or to its own file with `log.audit: <path>`.
import pino from 'pino';
import type { RequestContext } from '../pipeline/context.ts';
import { chainedDestination } from './chain.ts';
import { createLogger, type Logger } from './logger.ts';

export type DecisionKind =
  | 'allow'
  | 'deny'
  | 'would_deny'
  | 'public'
  | 'unauthenticated'
  | 'step_up'
  | 'rate_limited'
  | 'no_route'
  | 'refused'
  | 'rejected'
  | 'would_reject';

export interface AuditLog {
  record(ctx: RequestContext | undefined, status: number, code: string | undefined, extra?: Record<string, unknown>): void;
  flush(): void;
}

export function decisionKind(ctx: RequestContext | undefined, code: string | undefined): DecisionKind {
  if (code === 'GW_ERR_RATE_LIMITED') return 'rate_limited';
  if (code === 'GW_ERR_UNAUTHENTICATED') return 'unauthenticated';
  if (code === 'GW_ERR_VALIDATION' || code === 'GW_ERR_BODY_TOO_LARGE' || code === 'GW_ERR_UNSUPPORTED_MEDIA_TYPE') return 'rejected';
  // report-only forwarded a request that validation would have refused (and the policy allowed).
  if (ctx?.validation && code === undefined && (ctx.decision === null || ctx.decision.allow)) return 'would_reject';
  if (ctx?.decision) {
    // A public route may still carry a policy (e.g. source_ip): allowed, it is audited as public, like explain says.
    if (ctx.decision.allow) return ctx.route?.public ? 'public' : 'allow';
    return ctx.route?.mode === 'report-only' ? 'would_deny' : 'deny';
  }
  if (ctx === undefined) return 'refused';
  if (ctx.route === undefined) return code === undefined ? 'public' : code === 'GW_ERR_NO_ROUTE' ? 'no_route' : 'refused';
  if (ctx.route.public) return 'public';
  return code === undefined ? 'allow' : 'refused';
}

export function createAuditLog(target: string, mainLog: Logger, chain = false): AuditLog {
  // Decision records are the audit trail, not diagnostics: log.level (e.g. warn) must not silence them.
  const file = () => {
    const dest = pino.destination({ dest: target, sync: false, mkdir: true });
    return chain ? chainedDestination(target, dest) : dest;
  };
  const log: Logger = target === 'stdout' ? mainLog.child({ audit: true }, { level: 'info' }) : createLogger('info', file()).child({ audit: true });
  return {
    flush: () => log.flush(),
    record(ctx, status, code, extra) {
      log.info({
        msg: 'decision',
        request_id: ctx?.id,
        trace_id: ctx?.traceId,
        decision: decisionKind(ctx, code),
        route: ctx?.route?.name,
        method: ctx?.method,
        host: ctx?.host.name,
        path: ctx?.target.path,
        client_ip: ctx?.clientIp,
        subject: ctx?.identity?.subject,
        auth_method: ctx?.identity?.method,
        provider: ctx?.identity?.provider,
        rule: ctx?.decision?.rule,
        reasons: ctx?.decision?.reasons,
        mode: ctx?.route?.mode,
        ...(ctx?.validation ? { validation: ctx.validation } : {}),
        status,
        code,
        risk: ctx?.risk === undefined ? undefined : { score: ctx.risk.score, signals: ctx.risk.signals },
        ...extra,
      });
    },
  };
}
