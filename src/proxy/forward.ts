// forward stage: stream the request to the route's upstream over its undici Pool and the response back.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { forwardedElement } from '../normalize/index.ts';
import { abortResponse, type ChildSpan, type RequestContext, type RequestTrace, GatewayError, grpcMessage, grpcTimeoutMs, headerOf, isGrpcContentType, isGrpcResponse, isHttp2, respondTrailersOnly } from '../core/index.ts';
import { DROPPED } from './response-headers.ts';
import { responseHeaders, type ResponsePlan } from './response-headers.ts';
import { rewritePath, type EndpointTarget, type RetryPolicy } from './upstream.ts';
import { failureKind, isIdempotent, type Endpoint, type UpstreamGroup } from './balancer.ts';

/** How one attempt ended, for the balancer: failed (outlier), and the error to answer or retry. */
interface AttemptOutcome {
  /** true: a connect failure, reset, timeout or 502-504; false: an answer; undefined: the client left. */
  failed: boolean | undefined;
  /**
   * The failure was the app's own 502-504 answer or a timeout: something a request can cause (one failing
   * path, a slow page), so it never ejects the route's last available endpoint (balancer.ts).
   */
  byRequest?: boolean;
  error?: GatewayError;
  retry?: boolean;
}

/** The gateway's own headers on the upstream request: rebuilt, never taken from the client. */
export function appendForwardingHeaders(ctx: RequestContext, headers: string[], upstream: EndpointTarget): void {
  // Forwarded describes this hop (what the gateway itself saw); X-Forwarded-Proto/-Host the original request.
  const own = forwardedElement(ctx.peerIp, ctx.secure ? 'https' : 'http', ctx.host.authority);
  headers.push(
    'host', upstream.preserveHost ? ctx.host.authority : upstream.hostHeader,
    'forwarded', ctx.forwardedChain === undefined ? own : `${ctx.forwardedChain}, ${own}`,
    'x-forwarded-for', ctx.forwardedFor,
    'x-forwarded-proto', ctx.forwardedProto,
    'x-forwarded-host', ctx.forwardedHost,
    'x-request-id', ctx.id,
  );
}

/** Maps undici failures to the closed error set without leaking the upstream's address. */
export function upstreamError(err: unknown): GatewayError {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new GatewayError('GW_ERR_UPSTREAM_TIMEOUT', 'the upstream did not answer in time', { cause: err });
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return new GatewayError('GW_ERR_BAD_REQUEST', 'request body does not match Content-Length', { cause: err });
    default:
      return new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', 'the upstream could not be reached', { cause: err });
  }
}

/** A response being relayed after its head was sent, as runtime.live holds it (structurally a LiveConnection). */
export interface LiveStream<C> {
  readonly kind: 'stream';
  readonly ctx: C;
  readonly openedAt: number;
  /** Aborts it: the client's response and the upstream request. */
  end(reason: string): void;
}

/** Where a streaming response is registered from its head until its body ended (one process-wide object). */
export interface StreamSink<C> {
  opened(stream: LiveStream<C>): void;
  /** reason: the trigger's, else `upstream` (the body ended, or the upstream failed) or `client` (it left). */
  closed(stream: LiveStream<C>, reason: string): void;
}

/**
 * Streams both ways with backpressure: a raw undici dispatch handler writes the upstream's answer straight
 * into `res` (no stream() layer: no AsyncResource, AbortSignal or lifecycle listeners per request). Resolves
 * when the response is done, or quietly when the client went away (the upstream request is aborted then,
 * so a slow upstream cannot hold a pool, or shutdown, for its whole timeout); rejects with a GatewayError
 * only if nothing has been sent to the client yet.
 */
export function forward<C extends RequestContext>(
  ctx: C,
  req: IncomingMessage,
  res: ServerResponse,
  group: UpstreamGroup,
  plan: ResponsePlan,
  sink: StreamSink<C>,
  /** Told the reason when a trigger or shutdown ended the response (the request's audit record shows it). */
  facts: { endReason?: string | undefined; forwardedPath?: string | undefined },
  /** A validated body held in memory (sent with its exact length), or a replay stream; default: `req`. */
  body?: Buffer | Readable,
): Promise<void> {
  const upstream = group.upstream;
  let endpoint = group.pick(); // throws GW_ERR_NO_HEALTHY_UPSTREAM before anything is sent
  const headers = ctx.upstreamHeaders;
  if (Buffer.isBuffer(body)) setContentLength(headers, body.length);
  // gRPC: te: trailers kept, grpc-timeout honoured up to upstream.timeout (the same for every endpoint).
  let headersTimeout = upstream.headersTimeout;
  if (upstream.http2 && isGrpcContentType(headerOf(ctx, 'content-type'))) headersTimeout = grpcHeaders(ctx, headers, headersTimeout);
  appendForwardingHeaders(ctx, headers, endpoint.target);
  const path = upstream.rewrite === null ? ctx.target.path : rewritePath(upstream.rewrite, ctx.target.path);
  // Under the route's prefix only in another spelling: refused, never forwarded unrewritten.
  if (path === undefined) throw new GatewayError('GW_ERR_BAD_PATH', 'the path is not under the route prefix as written');
  if (upstream.rewrite !== null) facts.forwardedPath = path;
  const trace = ctx.trace;
  // Retried only when the request can be sent again as it was: an idempotent method, and no body or one held.
  const retries = upstream.retries;
  const replayable = retries !== null && isIdempotent(ctx.method) && (!ctx.hasBody || Buffer.isBuffer(body));
  const dispatchBody = body ?? (ctx.hasBody ? req : null);
  if (retries === null) {
    // No retries on this route: one attempt, no budget to keep (it never resolves with a failure to retry).
    const span = trace === undefined ? undefined : upstreamSpan(trace, ctx, headers, endpoint.target);
    return attemptOnce(ctx, res, endpoint, path, headersTimeout, dispatchBody, headers, plan, sink, facts, span, null, group, false) as Promise<unknown> as Promise<void>;
  }
  group.active++;
  let attempt = 0;
  const run = async (): Promise<void> => {
    for (;;) {
      const retrying = attempt > 0;
      const allowRetry = replayable && attempt < (retries as RetryPolicy).attempts;
      const span = trace === undefined ? undefined : upstreamSpan(trace, ctx, headers, endpoint.target);
      const result = await attemptOnce(ctx, res, endpoint, path, headersTimeout, dispatchBody, headers, plan, sink, facts, span, allowRetry ? (retries as RetryPolicy) : null, group, retrying);
      if (result === undefined) return;
      // A retryable failure within the budget, before anything reached the client: another endpoint when there is one.
      attempt++;
      group.cells.retries.n++;
      endpoint = group.pick(endpoint);
      if (!endpoint.target.preserveHost) setHost(headers, endpoint.target.hostHeader);
    }
  };
  return run().finally(() => group.active--);
}

/**
 * One attempt on one endpoint. Resolves undefined when the exchange is over (answered, or the client left),
 * or with the failure to retry (only when `retry` is given and nothing reached the client); rejects with a
 * GatewayError when nothing has been sent to the client yet.
 */
function attemptOnce<C extends RequestContext>(
  ctx: C,
  res: ServerResponse,
  endpoint: Endpoint,
  path: string,
  headersTimeout: number,
  body: Buffer | Readable | IncomingMessage | null,
  headers: string[],
  plan: ResponsePlan,
  sink: StreamSink<C>,
  facts: { endReason?: string | undefined },
  span: ChildSpan | undefined,
  retry: RetryPolicy | null,
  group: UpstreamGroup,
  retrying: boolean,
): Promise<GatewayError | undefined> {
  endpoint.begin();
  if (retrying) group.activeRetries++;
  return new Promise<GatewayError | undefined>((resolve, reject) => {
    const done = (failed: boolean | undefined, byRequest: boolean): void => {
      endpoint.end();
      if (retrying) group.activeRetries--;
      if (failed === true) group.failed(endpoint, byRequest);
      else if (failed === false) endpoint.succeeded();
    };
    const may = retry === null ? null : { policy: retry, may: () => group.mayRetry() };
    const handler = new ForwardHandler(ctx, res, plan, sink, facts, may, (outcome) => {
      done(outcome.failed, outcome.byRequest === true);
      if (outcome.error !== undefined) {
        if (outcome.retry) resolve(outcome.error);
        else reject(outcome.error);
      } else resolve(undefined);
    });
    if (span !== undefined) handler.span = span;
    try {
      endpoint.pool.dispatch(
        {
          path: path + ctx.target.query,
          method: ctx.method as Dispatcher.HttpMethod,
          headers,
          body,
          headersTimeout,
          bodyTimeout: endpoint.target.bodyTimeout,
        },
        handler,
      );
    } catch (err) {
      // A bug, not an upstream failure: the endpoint's counts stay right, the request gets a 500.
      done(undefined, false);
      reject(err);
    }
  });
}

function setHost(headers: string[], host: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'host') {
      headers[i + 1] = host;
      return;
    }
  }
}

/**
 * The upstream request's client span (tracing.otlp): the upstream is told its traceparent, so the
 * upstream's own spans hang under the gateway's; the client's traceparent and tracestate never pass as sent.
 */
function upstreamSpan(trace: RequestTrace, ctx: RequestContext, headers: string[], upstream: EndpointTarget): ChildSpan {
  const origin = new URL(upstream.origin);
  const span = trace.child(ctx.method, {
    'http.request.method': ctx.method,
    'server.address': origin.hostname,
    'server.port': origin.port === '' ? (origin.protocol === 'https:' ? 443 : 80) : Number(origin.port),
    'url.path': ctx.target.path,
    'zt.upstream': 'forward',
  });
  setTraceHeaders(headers, span.traceparent, trace.tracestate);
  return span;
}

/** Replaces whatever trace context the client sent with the gateway's (tracing.otlp). */
export function setTraceHeaders(headers: string[], traceparent: string, tracestate: string | undefined): void {
  removeHeaders(headers, 'traceparent', 'tracestate');
  headers.push('traceparent', traceparent);
  if (tracestate !== undefined) headers.push('tracestate', tracestate);
}

function removeHeaders(headers: string[], a: string, b: string): void {
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    const name = (headers[r] as string).toLowerCase();
    if (name === a || name === b) continue;
    headers[w++] = headers[r] as string;
    headers[w++] = headers[r + 1] as string;
  }
  headers.length = w;
}

/** Whether a failed attempt may be sent again: the route's policy and its budget, read at the failure. */
interface RetryGate {
  readonly policy: RetryPolicy;
  may(): boolean;
}

class ClientGone extends Error {
  override readonly name = 'ClientGone';
}

/** One forwarded request: undici's callbacks in, `res` out; a live stream from its head to its end. */
class ForwardHandler<C extends RequestContext> implements Dispatcher.DispatchHandler, LiveStream<C> {
  readonly kind = 'stream';
  readonly ctx: C;
  openedAt = 0;
  readonly #res: ServerResponse;
  readonly #plan: ResponsePlan;
  readonly #sink: StreamSink<C>;
  readonly #facts: { endReason?: string | undefined };
  /** Registered in the sink (the head was sent and the body has not ended). */
  #live = false;
  readonly #finish: (outcome: AttemptOutcome) => void;
  readonly #retry: RetryGate | null;
  /** Given up for a retry: undici's later callbacks for this attempt are ignored. */
  #abandoned = false;
  #status = 0;
  #controller: Dispatcher.DispatchController | null = null;
  #gone = false;
  #settled = false;
  /** The plan's body tap for this response (CSP learn); null: none. */
  #tap: { data(chunk: Buffer): void; end(): void } | null = null;
  /** The upstream request's span, with tracing.otlp only. */
  span: ChildSpan | undefined = undefined;

  constructor(
    ctx: C,
    res: ServerResponse,
    plan: ResponsePlan,
    sink: StreamSink<C>,
    facts: { endReason?: string | undefined },
    retry: RetryGate | null,
    finish: (outcome: AttemptOutcome) => void,
  ) {
    this.ctx = ctx;
    this.#res = res;
    this.#plan = plan;
    this.#sink = sink;
    this.#facts = facts;
    this.#finish = finish;
    this.#retry = retry;
    // A client that left while it was being authenticated: its request is never sent.
    if (res.destroyed) this.#gone = true;
    else res.once('close', this.#onClose);
  }

  /** The client closed (or reset) before the response was complete: stop the upstream request too. */
  readonly #onClose = (): void => {
    if (this.#res.writableFinished) return;
    this.#gone = true;
    this.#controller?.abort(new ClientGone('the client went away'));
  };

  readonly #onDrain = (): void => {
    this.#controller?.resume();
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Queued in the pool while the client left: never sent.
    if (this.#gone) controller.abort(new ClientGone('the client went away'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx interim answers (100 Continue, 103) are not relayed
    this.#status = statusCode;
    this.span?.set('http.response.status_code', statusCode);
    const retry = this.#retry;
    if (retry !== null && !this.#gone && retry.policy.statuses.has(statusCode) && retry.may()) {
      // Not relayed: this answer is dropped and the request sent again (on another endpoint when there is one).
      this.#abandoned = true;
      if (this.span !== undefined) this.#endSpan(`status_${statusCode}`);
      this.#settle();
      _controller.abort(new ClientGone('retried'));
      return this.#finish({ failed: true, byRequest: true, error: new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE'), retry: true });
    }
    // A gRPC trailers-only answer (grpc-status in the headers) stays one HEADERS frame with END_STREAM.
    if (headers['grpc-status'] !== undefined && isHttp2(this.#res)) respondTrailersOnly(this.#res, statusCode, responseHeaders(headers, this.ctx.id, this.#plan));
    else this.#res.writeHead(statusCode, responseHeaders(headers, this.ctx.id, this.#plan));
    if (this.#plan.tap !== undefined) this.#tap = this.#plan.tap.start(statusCode, headers);
    if (this.#settled) return;
    this.openedAt = Date.now();
    this.#live = true;
    this.#sink.opened(this);
  }

  /** A trigger or shutdown: the client's response is cut and the upstream request aborted. */
  end(reason: string): void {
    if (!this.#live || this.#facts.endReason !== undefined) return;
    this.#facts.endReason = reason;
    this.#gone = true;
    this.#controller?.abort(new ClientGone(`ended: ${reason}`));
    // A gRPC stream ends with a status in its trailers (the client reads why), any other response is cut.
    const res = this.#res;
    if (isGrpcResponse(res) && res.headersSent && !res.writableEnded && !res.destroyed) {
      res.addTrailers({ 'grpc-status': String(grpcEndStatus(reason)), 'grpc-message': grpcMessage(`ended: ${reason}`) });
      res.end();
      return;
    }
    abortResponse(res, 'cancel');
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#abandoned) return;
    if (this.#res.writableEnded) return; // a trailers-only answer already ended it
    if (this.#tap !== null) this.#tap.data(chunk);
    if (this.#res.write(chunk)) return;
    controller.pause();
    this.#res.once('drain', this.#onDrain);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.#abandoned) return;
    // Trailers (gRPC's grpc-status) are relayed to an HTTP/2 client; HTTP/1.1 answers stay as they were.
    if (isHttp2(this.#res) && !this.#res.writableEnded) relayTrailers(this.#res, trailers);
    if (!this.#res.writableEnded) this.#res.end();
    if (this.#tap !== null) this.#tap.end();
    if (this.span !== undefined) this.#endSpan(undefined);
    this.#settle();
    this.#finish({ failed: this.#status >= 502 && this.#status <= 504, byRequest: true });
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    if (this.#abandoned) return;
    const res = this.#res;
    if (this.span !== undefined) this.#endSpan(this.#gone ? 'client_gone' : upstreamError(err).code);
    this.#settle();
    // The client left (closed, reset, or its upload broke off): nobody to answer, no upstream to blame.
    if (this.#gone || res.destroyed) return this.#finish({ failed: undefined });
    // Too late for a problem body: cut the connection so the client sees a truncated response.
    if (res.headersSent) {
      abortResponse(res, 'internal');
      return this.#finish({ failed: true });
    }
    const error = upstreamError(err);
    const kind = failureKind(err);
    const byRequest = kind === 'other'; // a timeout (or another request-level error), not a dead endpoint
    const retry = this.#retry;
    if (retry !== null && this.#status === 0) {
      const retryable = (kind === 'connect_failure' && retry.policy.connectFailure) || (kind === 'reset' && retry.policy.reset);
      if (retryable && retry.may()) return this.#finish({ failed: true, byRequest, error, retry: true });
    }
    this.#finish({ failed: true, byRequest, error });
  }

  #endSpan(error: string | undefined): void {
    this.span?.end(error);
    this.span = undefined;
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#res.off('close', this.#onClose);
    this.#res.off('drain', this.#onDrain);
    if (!this.#live) return;
    this.#live = false;
    this.#sink.closed(this, this.#facts.endReason ?? (this.#gone ? 'client' : 'upstream'));
  }
}

/**
 * gRPC to an HTTP/2 upstream: `te: trailers` (gRPC servers require it; it was dropped as hop-by-hop on the way
 * in), and `grpc-timeout` honoured up to upstream.timeout (the deadline sent on is capped to it too).
 * Returns the response-headers timeout for this call.
 */
function grpcHeaders(ctx: RequestContext, headers: string[], upstreamTimeout: number): number {
  headers.push('te', 'trailers');
  const asked = grpcTimeoutMs(headerOf(ctx, 'grpc-timeout'));
  if (asked === undefined || asked <= upstreamTimeout) return asked ?? upstreamTimeout;
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === 'grpc-timeout') headers[i + 1] = `${upstreamTimeout}m`;
  return upstreamTimeout;
}

/** Why a live gRPC stream was ended, as its status: shutdown UNAVAILABLE, a session gone UNAUTHENTICATED, else PERMISSION_DENIED. */
function grpcEndStatus(reason: string): number {
  if (reason === 'shutdown') return 14;
  if (reason === 'logout' || reason === 'expired' || reason === 'lifetime') return 16;
  return 7;
}

function relayTrailers(res: ServerResponse, trailers: IncomingHttpHeaders | undefined): void {
  if (trailers === undefined || trailers === null) return;
  const out: Record<string, string | string[]> = {};
  let any = false;
  for (const name in trailers) {
    const value = trailers[name];
    if (value === undefined || DROPPED.has(name) || name.charCodeAt(0) === 58) continue;
    out[name] = value;
    any = true;
  }
  if (any) res.addTrailers(out);
}

function setContentLength(headers: string[], length: number): void {
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    const name = (headers[r] as string).toLowerCase();
    if (name === 'content-length' || name === 'transfer-encoding') continue;
    headers[w++] = headers[r] as string;
    headers[w++] = headers[r + 1] as string;
  }
  headers.length = w;
  headers.push('content-length', String(length));
}
