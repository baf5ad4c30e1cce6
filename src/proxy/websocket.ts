// The WebSocket terminal: after the pipeline admitted an upgrade, http-proxy-3 relays the handshake and the
// frames (used for WebSockets only: it re-parses URLs and is slow for plain HTTP). It is imported on the first
// upgrade, so a gateway that never sees one never loads it.
import type { ClientRequest, IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyServer, ServerOptions } from 'http-proxy-3';
import { GatewayError, type RequestContext } from '../core/index.ts';
import { appendForwardingHeaders, setTraceHeaders } from './forward.ts';
import { scrubUpgradeResponseHeaders } from './response-headers.ts';
import type { EndpointTarget } from './upstream.ts';
import { WebSocketRelay, type RelayHooks } from './ws-relay.ts';

/**
 * Why a request that carries `Upgrade` is not a WebSocket handshake we relay (undefined: it is one). Such
 * requests are refused, never served as plain requests (server/listeners.ts): node:http drops the rest of
 * the socket read after an upgrade it does not take, so the bytes behind it would be parsed out of step.
 */
export function notWebSocketHandshake(req: IncomingMessage): string | undefined {
  const upgrade = req.headers.upgrade;
  if (typeof upgrade !== 'string' || upgrade.trim().toLowerCase() !== 'websocket') return 'Upgrade is not a WebSocket handshake';
  if (req.method !== 'GET') return 'a WebSocket handshake is a GET';
  // RFC 6455 §4.1: the handshake has no body; one sent anyway would reach the app after the 101.
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) return 'a WebSocket handshake has no body';
  return undefined;
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return notWebSocketHandshake(req) === undefined;
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
function wsTarget(upstream: EndpointTarget): ServerOptions {
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

/** Relays one admitted upgrade to the route's upstream; onError gets a GatewayError for the client. */
export type WebSocketTerminal = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  ctx: RequestContext,
  upstream: EndpointTarget,
  /** The path sent upstream (after the route's prefix rewrite). */
  path: string,
  onError: (err: GatewayError, cause: Error) => void,
  hooks: RelayHooks,
  /** The gateway's own cookie names: dropped from the upstream's handshake answer. */
  ownCookie?: ((name: string) => boolean) | undefined,
) => void;

/** The hooks of each client socket being relayed (http-proxy-3's events name the socket, not our call). */
const hooksOf = new WeakMap<Duplex, RelayHooks>();
/** The gateway's cookie names per client socket (http-proxy-3's events name the socket, not our call). */
const ownCookieOf = new WeakMap<Duplex, (name: string) => boolean>();
/** The relay of each upstream socket, from its 101 to http-proxy-3's 'open' event. */
const relays = new WeakMap<Duplex, WebSocketRelay>();

async function createProxy(): Promise<ProxyServer> {
  const { createProxyServer } = await import('http-proxy-3');
  // toProxy: forward req.url verbatim (http-proxy-3 would otherwise re-parse it with WHATWG URL rules).
  const proxy = createProxyServer({ ws: true, xfwd: false, toProxy: true, secure: true, prependPath: false });
  proxy.on('error', () => undefined); // per-call callbacks below handle errors
  // Registered before http-proxy-3's own listeners, so the handshake answer it relays is scrubbed first.
  proxy.on('proxyReqWs', (proxyReq, req, socket, options) => {
    const id = req.headers['x-request-id'] as string;
    proxyReq.once('upgrade', (proxyRes: IncomingMessage, proxySocket: Socket) => {
      scrubUpgradeResponseHeaders(proxyRes.headers, id, true, ownCookieOf.get(socket));
      const hooks = hooksOf.get(socket);
      // A client already gone never opens a live connection (its 'close' has fired, and http-proxy-3 closes
      // only the upstream sockets it knew of then): the upstream's socket is dropped at once.
      if (socket.destroyed || hooks === undefined) return void proxySocket.destroy();
      // Live from the upstream's 101 until both sockets have closed.
      relays.set(proxySocket, new WebSocketRelay(socket, proxySocket, hooks));
    });
    proxyReq.once('response', (proxyRes: IncomingMessage) => scrubUpgradeResponseHeaders(proxyRes.headers, id, false, ownCookieOf.get(socket)));
    // A client gone (or destroyed by shutdown) before the upstream's answer: the handshake is abandoned, not
    // left to hold a socket (and the process) until its timeout.
    const abandon = (): void => void proxyReq.destroy();
    socket.once('close', abandon);
    proxyReq.once('upgrade', () => socket.off('close', abandon)).once('close', () => socket.off('close', abandon));
    // http-proxy-3 reads proxyTimeout on the web path only: bound the wait for the upstream's handshake answer.
    if (options.proxyTimeout) handshakeTimeout(proxyReq, options.proxyTimeout);
  });
  // Emitted right after http-proxy-3 piped the two sockets together, before a byte went through.
  proxy.on('open', (proxySocket: Socket) => relays.get(proxySocket)?.relay());
  return proxy;
}

export function createWebSocketTerminal(): WebSocketTerminal {
  let proxy: ProxyServer | undefined;
  let loading: Promise<ProxyServer> | undefined;
  return (req, socket, head, ctx, upstream, path, onError, hooks, ownCookie) => {
    hooksOf.set(socket, hooks);
    if (ownCookie !== undefined) ownCookieOf.set(socket, ownCookie);
    const headers = ctx.upstreamHeaders;
    appendForwardingHeaders(ctx, headers, upstream);
    // The handshake has no span of its own: the upstream's parent is the upgrade's server span.
    if (ctx.trace !== undefined) setTraceHeaders(headers, ctx.trace.traceparent, ctx.trace.tracestate);
    headers.push('connection', 'Upgrade', 'upgrade', 'websocket');
    // http-proxy-3 reads the request object: hand it the canonical target and the filtered headers only.
    req.url = path + ctx.target.query;
    req.headers = headerObject(headers);
    const relay = (p: ProxyServer): void => p.ws(req, socket, head, wsTarget(upstream), (err: Error) => onError(wsUpstreamError(err), err));
    if (proxy !== undefined) return relay(proxy);
    loading ??= createProxy().then((p) => (proxy = p));
    // A failed import, or a relay that throws once it is loaded: a problem answer, never an unhandled rejection.
    loading.then(relay).catch((err: Error) => onError(new GatewayError('GW_ERR_INTERNAL', undefined, { cause: err }), err));
  };
}
