// What every request leaves behind when it ends, plain or upgraded: the state it held is released, one
// audit record, the metrics, and the access log line. Written once here so both kinds cannot drift apart.
import type { IncomingMessage } from 'node:http';
import { decisionKind, type Logger } from '../audit/index.ts';
import type { ServerTrace } from '../tracing/index.ts';
import { recordRequest, type RequestFacts } from '../metrics/index.ts';
import type { PipelineContext } from './route.ts';
import type { RuntimeHandle, RuntimeState } from './state.ts';

export interface Outcome extends RequestFacts {
  code: string | undefined;
  /** The id answered to the client when normalize refused the request (there is no context then). */
  requestId?: string;
  subject?: string | undefined;
  authMethod?: string | undefined;
  /** A forward-auth check (/.zt/verify): the context describes the request the proxy asked about. */
  forwardAuth?: boolean;
  /** A streaming response ended by a trigger or shutdown (runtime.live), not by its own end. */
  endReason?: string | undefined;
  /** The path sent upstream when the route rewrites its prefix (the record's `path` is the client's). */
  forwardedPath?: string | undefined;
}

/** What a record reads of the request itself: an IncomingMessage, or a gRPC ext_authz check's method and peer. */
export type RequestHead = Pick<IncomingMessage, 'method'> & Partial<Pick<IncomingMessage, 'httpVersionMajor'>> & { readonly socket: { readonly remoteAddress?: string | undefined } };

export interface Ending {
  readonly kind: 'request' | 'upgrade';
  readonly req: RequestHead;
  readonly ctx: PipelineContext | undefined;
  readonly status: number;
  readonly outcome: Outcome;
  readonly startNs: bigint;
  /** When the request ended, if the caller has already read the clock (else read here). */
  readonly endNs?: bigint;
  /** Plain requests: the response was written to its end. */
  readonly completed?: boolean;
  readonly bytesIn?: number;
  readonly bytesOut?: number;
  /** The request's server span (tracing.otlp only). */
  readonly trace?: ServerTrace | undefined;
}

const FORWARD_AUTH = Object.freeze({ forward_auth: true });
const UPGRADE = Object.freeze({ upgrade: 'websocket' });
const STEP_UP_UPGRADE = Object.freeze({ upgrade: 'websocket', decision: 'step_up' });

function auditExtra(e: Ending): Record<string, unknown> | undefined {
  const extra = baseExtra(e);
  const reason = e.outcome.endReason;
  const forwarded = e.outcome.forwardedPath;
  if (forwarded !== undefined) return { ...extra, forwarded_path: forwarded, ...(reason === undefined ? {} : { end_reason: reason }) };
  return reason === undefined ? extra : { ...extra, end_reason: reason };
}

const H2 = Object.freeze({ protocol: 'h2' });

function baseExtra(e: Ending): Record<string, unknown> | undefined {
  const { ctx, outcome } = e;
  if (e.kind === 'upgrade') return outcome.stepUp ? STEP_UP_UPGRADE : UPGRADE;
  if (ctx === undefined) return { request_id: outcome.requestId, method: e.req.method, client_ip: e.req.socket.remoteAddress };
  if (outcome.stepUp) return { decision: 'step_up', ...(outcome.forwardAuth ? FORWARD_AUTH : {}) };
  return outcome.forwardAuth ? FORWARD_AUTH : undefined;
}

/** Releases the request's state and writes its audit record, metrics and access log line. */
export function endExchange(runtime: RuntimeHandle, state: RuntimeState, log: Logger, e: Ending): void {
  runtime.release(state);
  const { ctx, outcome } = e;
  state.audit.record(ctx, e.status, outcome.code, auditExtra(e));
  const durationNs = (e.endNs ?? process.hrtime.bigint()) - e.startNs;
  recordRequest(runtime.metrics, state.compiled.mfa, ctx, e.status, outcome, ctx?.method ?? e.req.method, Number(durationNs) / 1e9);
  if (e.trace !== undefined) endTrace(e.trace, ctx, e.status, outcome);
  // Upgrades are logged whatever log.access says: they are few and long-lived.
  if (e.kind === 'request' && !state.compiled.config.log.access) return;
  const common = {
    req_id: ctx?.id,
    trace_id: e.trace?.traceId ?? ctx?.traceId, // with export on, the trace the spans are in
    route: ctx?.route?.name,
    path: ctx?.target.path, // never the query: it may carry tokens
    code: outcome.code,
    duration_ms: Number(durationNs) / 1e6,
    client_ip: ctx?.clientIp ?? e.req.socket.remoteAddress,
  };
  if (e.kind === 'upgrade') {
    log.info({ msg: 'upgrade', ...common });
    return;
  }
  log.info({
    msg: 'request',
    ...common,
    method: e.req.method,
    host: ctx?.host.name,
    status: e.status,
    subject: outcome.subject,
    auth_method: outcome.authMethod,
    completed: e.completed,
    bytes_in: e.bytesIn,
    bytes_out: e.bytesOut,
    ...(e.req.httpVersionMajor === 2 ? H2 : undefined), // HTTP/2 requests say so; HTTP/1.1 lines are unchanged
  });
}

function endTrace(trace: ServerTrace, ctx: PipelineContext | undefined, status: number, outcome: Outcome): void {
  const kind = decisionKind(ctx, outcome.code);
  trace.end({
    status,
    route: ctx?.route?.name,
    decision: outcome.stepUp ? 'step_up' : kind,
    code: outcome.code,
    subject: outcome.subject,
  });
}

const OPENED = Object.freeze({ upgrade: 'websocket', connection: 'opened' });

/**
 * An admitted upgrade at the upstream's 101: its decision record (status 101) and request metrics. The
 * connection is live from now; its state is released by closeUpgrade.
 */
export function openUpgrade(runtime: RuntimeHandle, state: RuntimeState, ctx: PipelineContext, outcome: Outcome, trace: ServerTrace | undefined): void {
  state.audit.record(ctx, 101, undefined, OPENED);
  recordRequest(runtime.metrics, state.compiled.mfa, ctx, 101, outcome, ctx.method, Number(process.hrtime.bigint() - ctx.startNs) / 1e9);
  if (trace !== undefined) endTrace(trace, ctx, 101, outcome); // the handshake's span: the relay after it is not a request
  runtime.metrics.liveOpened(runtime.metrics.route(ctx.route?.name ?? 'none'), 'websocket');
}

/** How a live WebSocket ended: its second record, with the first one's request id. */
export interface UpgradeEnding {
  readonly ctx: PipelineContext;
  readonly reason: string;
  readonly durationMs: number;
  /** Client → upstream and upstream → client, after the 101. */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** An upgraded connection whose sockets have both closed: the state it held, its closing record and metrics, the log line. */
export function closeUpgrade(runtime: RuntimeHandle, state: RuntimeState, log: Logger, e: UpgradeEnding): void {
  runtime.release(state);
  const { ctx } = e;
  const name = ctx.route?.name ?? 'none';
  const fields = { end_reason: e.reason, duration_ms: Math.round(e.durationMs), bytes_in: e.bytesIn, bytes_out: e.bytesOut };
  state.audit.record(ctx, 101, undefined, { upgrade: 'websocket', connection: 'closed', ...fields });
  runtime.metrics.liveClosed(runtime.metrics.route(name), name, 'websocket', e.reason);
  log.info({ msg: 'upgrade', req_id: ctx.id, trace_id: ctx.traceId, route: name, path: ctx.target.path, client_ip: ctx.clientIp, ...fields });
}
