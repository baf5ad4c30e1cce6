// One structured record per decision (DESIGN.md §1 "audit"): who asked for what, what was decided and why.
// To the main log stream (stdout) by default, or to its own file with `log.audit: <path>`.
import { mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import type { RequestContext } from '../core/index.ts';
import { chainedDestination } from './chain.ts';
import { SERVICE, type Logger } from './logger.ts';
import { batchedLines, flushAtExit, type LineSink } from './batch.ts';
import { bindingsPrefix, isoClock, LineBuilder } from './line.ts';

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
  /** Flushes, and stops flushing at process exit (the runtime no longer writes here). */
  close(): void;
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

/** The keys of a serialized bindings string (`,"k":v,…`), so caller fields cannot repeat them. */
function bindingKeys(bindings: string): string[] {
  try {
    return Object.keys(JSON.parse(`{${bindings.slice(1)}}`) as object);
  } catch {
    return [];
  }
}

export function createAuditLog(target: string, mainLog: Logger, chain = false): AuditLog {
  // Decision records are the audit trail, not diagnostics: log.level (e.g. warn) must not silence them. On
  // stdout they share the main log's destination (one ordered stream) and its bindings.
  let sink: LineSink;
  let bindings: string;
  // stdout: the main log owns the stream and flushes it at exit; a file is flushed from here.
  let stopExitFlush = (): void => undefined;
  if (target === 'stdout') {
    // The main log's own stream (batched per turn in production): one ordered stream, and its bindings
    // (service, and worker and pid in a cluster) as pino has already serialized them.
    const fromPino = mainLog as unknown as Record<symbol, unknown>;
    sink = fromPino[pino.symbols.streamSym] as LineSink;
    bindings = String(fromPino[pino.symbols.chindingsSym] ?? '');
  } else {
    // Opened now, not by sonic-boom in the background: a record written just before an early exit is kept,
    // and an unwritable path fails the start instead of surfacing later as a stream error.
    mkdirSync(dirname(target), { recursive: true });
    const dest = batchedLines(pino.destination({ dest: openSync(target, 'a'), sync: false }));
    const file = chain ? chainedDestination(target, dest) : dest;
    stopExitFlush = flushAtExit(file);
    sink = file;
    bindings = bindingsPrefix({ service: SERVICE });
  }
  const line = new LineBuilder(`${bindings},"audit":true`, ['service', 'audit', ...bindingKeys(bindings)]);
  const now = isoClock();
  return {
    flush: () => sink.flush?.(),
    close() {
      sink.flush?.();
      stopExitFlush();
    },
    record(ctx, status, code, extra) {
      const b = line.open(now(), extra).raw('msg', '"decision"');
      if (ctx === undefined) {
        b.raw('decision', `"${decisionKind(undefined, code)}"`);
      } else {
        const route = ctx.route;
        const identity = ctx.identity;
        const decision = ctx.decision;
        b.str('request_id', ctx.id)
          .str('trace_id', ctx.trace?.traceId ?? ctx.traceId) // with export on: the trace its spans are in
          .raw('decision', `"${decisionKind(ctx, code)}"`)
          .str('route', route?.name)
          .str('method', ctx.method)
          .str('host', ctx.host.name)
          .str('path', ctx.target.path)
          .str('client_ip', ctx.clientIp)
          .str('subject', identity?.subject)
          .str('auth_method', identity?.method)
          .str('provider', identity?.provider)
          .str('rule', decision?.rule)
          .value('reasons', decision?.reasons)
          .str('mode', route?.mode);
        if (ctx.validation) b.value('validation', ctx.validation);
      }
      b.raw('status', String(status)).str('code', code);
      if (ctx?.risk !== undefined) b.value('risk', { score: ctx.risk.score, signals: ctx.risk.signals });
      if (extra !== undefined) b.fields(extra);
      sink.write(b.close());
    },
  };
}
