// forward stage: stream the request to the route's upstream over its undici Pool and the response back.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import { forwardedElement } from '../normalize/forwarded.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { GatewayError } from '../pipeline/errors.ts';
import { responseHeaders, type ResponsePlan } from './response-headers.ts';
import type { UpstreamTarget } from './upstream.ts';

/** The gateway's own headers on the upstream request: rebuilt, never taken from the client. */
export function appendForwardingHeaders(ctx: RequestContext, headers: string[], upstream: UpstreamTarget): void {
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

export interface ForwardResult {
  status: number;
}

/**
 * Streams both ways with backpressure (undici's stream() writes straight into `res`). Resolves when the
 * response is done, or quietly when the client went away (the upstream request is aborted then, so a
 * slow upstream cannot hold a pool, or shutdown, for its whole timeout); rejects with a GatewayError only
 * if nothing has been sent to the client yet.
 */
export function forward(
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  pool: Pool,
  upstream: UpstreamTarget,
  plan: ResponsePlan,
  /** A validated body held in memory (sent with its exact length), or a replay stream; default: `req`. */
  body?: Buffer | Readable,
): Promise<void> {
  const headers = ctx.upstreamHeaders;
  if (Buffer.isBuffer(body)) setContentLength(headers, body.length);
  appendForwardingHeaders(ctx, headers, upstream);
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.once('close', onClose);
  const opts: Dispatcher.RequestOptions<StreamState> = {
    path: ctx.target.path + ctx.target.query,
    method: ctx.method as Dispatcher.HttpMethod,
    headers,
    body: body ?? (ctx.hasBody ? req : null),
    opaque: { res, id: ctx.id, plan },
    headersTimeout: upstream.headersTimeout,
    bodyTimeout: upstream.bodyTimeout,
    signal: abort.signal,
  };
  return pool.stream(opts, streamFactory).then(
    () => {
      res.off('close', onClose);
    },
    (err: unknown) => {
      res.off('close', onClose);
      // The client left (closed, reset, or its upload broke off): nobody to answer, no upstream to blame.
      if (abort.signal.aborted || res.destroyed) return;
      if (res.headersSent) {
        // Too late for a problem body: cut the connection so the client sees a truncated response.
        res.destroy();
        return;
      }
      throw upstreamError(err);
    },
  );
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

interface StreamState {
  res: ServerResponse;
  id: string;
  plan: ResponsePlan;
}

function streamFactory(data: Dispatcher.StreamFactoryData<StreamState>): Writable {
  const { res, id, plan } = data.opaque;
  res.writeHead(data.statusCode, responseHeaders(data.headers, id, plan));
  return res;
}
