// WebSocket upgrades: same normalize → route → auth path as any request, then http-proxy-3 (ws only).
import type { ClientRequest, IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer, type ServerOptions } from 'http-proxy-3';
import type { Logger } from '../audit/logger.ts';
import { ERROR_CODES, GatewayError, type GatewayErrorCode } from '../pipeline/errors.ts';
import { admit, resolveRoute } from '../pipeline/chain.ts';
import { isReserved } from '../pipeline/reserved.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Runtime } from '../server/runtime.ts';
import { writeProblemToSocket } from '../server/problem.ts';
import { appendForwardingHeaders } from './forward.ts';
import { scrubUpgradeResponseHeaders } from './response-headers.ts';
import type { UpstreamTarget } from './upstream.ts';
import { randomUUID } from 'node:crypto';
import { factsFromError, recordRequest, type RequestFacts } from '../metrics/record.ts';

const UPGRADE = { upgrade: 'websocket' };
const STEP_UP_UPGRADE = { upgrade: 'websocket', decision: 'step_up' };

/** Only real WebSocket handshakes become upgrades; other Upgrade values (h2c…) are plain requests. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

function headerObject(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    out[name] = out[name] === undefined ? value : `${out[name]}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out;
}

/**
 * Per-call http-proxy-3 options for a route's upstream. setupOutgoing copies host/hostname/ca/cert/key from
 * `target` and builds on `ssl`, so the TLS name goes there; `connectTimeout` is the WS path's connect bound.
 */
function wsTarget(upstream: UpstreamTarget): ServerOptions {
  const origin = new URL(upstream.origin);
  const https = origin.protocol === 'https:';
  // WHATWG keeps IPv6 brackets in hostname; node:http wants the bare address.
  const host = origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname;
  const tls = upstream.tls;
  // As the HTTP path (undici): SNI and certificate check against upstream.tls.servername, else the URL's
  // host name (never the Host header, which preserve_host may set to the client's).
  const servername = tls?.servername ?? (isIP(host) === 0 ? host : undefined);
  return {
    target: {
      protocol: origin.protocol,
      host,
      hostname: host,
      port: Number(origin.port || (https ? 443 : 80)),
      ...(tls?.ca ? { ca: tls.ca } : {}),
      ...(tls?.cert ? { cert: tls.cert, key: tls.key } : {}),
    },
    ...(https && servername !== undefined ? { ssl: { servername } } : {}),
    changeOrigin: false,
    connectTimeout: upstream.connectTimeout,
    proxyTimeout: upstream.headersTimeout,
  };
}

function handshakeTimeout(proxyReq: ClientRequest, ms: number): void {
  const timer = setTimeout(() => {
    proxyReq.destroy(Object.assign(new Error('the upstream did not answer the WebSocket handshake in time'), { code: 'ETIMEDOUT' }));
  }, ms);
  timer.unref();
  const clear = () => clearTimeout(timer);
  proxyReq.once('upgrade', clear).once('response', clear).once('error', clear).once('close', clear);
}

function wsUpstreamError(err: Error): GatewayError {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNECT_TIMEOUT' || code === 'ETIMEDOUT'
    ? new GatewayError('GW_ERR_UPSTREAM_TIMEOUT', 'the upstream did not answer in time', { cause: err })
    : new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', undefined, { cause: err });
}

export function createUpgradeHandler(runtime: Runtime, log: Logger, open: Set<Duplex>) {
  // toProxy: forward req.url verbatim (http-proxy-3 would otherwise re-parse it with WHATWG URL rules).
  const proxy = createProxyServer({ ws: true, xfwd: false, toProxy: true, secure: true, prependPath: false });
  proxy.on('error', () => undefined); // per-call callbacks below handle errors
  // Registered before http-proxy-3's own listeners, so the handshake answer it relays is scrubbed first.
  const metrics = runtime.metrics;
  proxy.on('proxyReqWs', (proxyReq, req, socket, options) => {
    const id = req.headers['x-request-id'] as string;
    proxyReq.once('upgrade', (proxyRes: IncomingMessage) => {
      scrubUpgradeResponseHeaders(proxyRes.headers, id, true);
      // Open from the upstream's 101 until the client's socket closes (a client already gone never counts:
      // its 'close' has fired, so the gauge would never come back down).
      if (socket.destroyed) return;
      metrics.websocketOpened();
      socket.once('close', () => metrics.websocketClosed());
    });
    proxyReq.once('response', (proxyRes: IncomingMessage) => scrubUpgradeResponseHeaders(proxyRes.headers, id, false));
    // http-proxy-3 reads proxyTimeout on the web path only: bound the wait for the upstream's handshake answer.
    if (options.proxyTimeout) handshakeTimeout(proxyReq, options.proxyTimeout);
  });

  return function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const startNs = process.hrtime.bigint();
    const state = runtime.acquire();
    let ctx: RequestContext | undefined;
    let code: string | undefined;
    let released = false;
    const facts: RequestFacts = { code: undefined };
    const refuse = (err: unknown, id: string) => {
      factsFromError(err, facts);
      code = writeProblemToSocket(socket, err, id);
    };
    const done = () => {
      if (released) return;
      released = true;
      runtime.release(state);
      const status = code === undefined ? 101 : (ERROR_CODES[code as GatewayErrorCode]?.status ?? 500);
      state.audit.record(ctx, status, code, facts.stepUp ? STEP_UP_UPGRADE : UPGRADE);
      facts.code = code;
      recordRequest(metrics, state.compiled.mfa, ctx, status, facts);
      log.info({
        msg: 'upgrade',
        req_id: ctx?.id,
        trace_id: ctx?.traceId,
        route: ctx?.route?.name,
        path: ctx?.target.path,
        code,
        duration_ms: Number(process.hrtime.bigint() - startNs) / 1e6,
        client_ip: ctx?.clientIp ?? req.socket.remoteAddress,
      });
    };
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      done();
    });
    socket.on('error', () => socket.destroy());

    try {
      ctx = state.normalize(req, startNs);
      if (isReserved(ctx.target.matchPath)) throw new GatewayError('GW_ERR_NO_ROUTE');
      const current = ctx;
      const route = resolveRoute(state, current);
      if (!route.websocket) throw new GatewayError('GW_ERR_BAD_REQUEST', 'WebSocket is not enabled on this route');
      // A validated route describes HTTP requests only: an upgrade would reach the app unvalidated.
      if (route.validator !== null) throw new GatewayError('GW_ERR_BAD_REQUEST', 'WebSocket is not available on a validated route');
      const admitted = admit(state, route, current, req);
      const proceed = () => {
        const headers = current.upstreamHeaders;
        appendForwardingHeaders(current, headers, route.upstream);
        headers.push('connection', 'Upgrade', 'upgrade', 'websocket');
        req.url = current.target.path + current.target.query;
        req.headers = headerObject(headers);
        const id = current.id;
        proxy.ws(req, socket, head, wsTarget(route.upstream), (err: Error) => {
          refuse(wsUpstreamError(err), id);
          log.warn({ req_id: id, err }, 'websocket upstream failed');
        });
      };
      if (admitted instanceof Promise) {
        // catch() after then(): an exception inside proceed() must become a problem answer too, not an
        // unhandled rejection (which would end the process).
        admitted.then(proceed).catch((err: unknown) => {
          refuse(err, current.id);
          if (!(err instanceof GatewayError)) log.warn({ req_id: current.id, err }, 'upgrade failed');
        });
      } else proceed();
    } catch (err) {
      refuse(err, ctx?.id ?? randomUUID());
      if (!(err instanceof GatewayError)) log.warn({ req_id: ctx?.id, err }, 'upgrade failed');
    }
  };
}
