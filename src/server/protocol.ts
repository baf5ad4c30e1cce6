// Refusals at the protocol level, before a request reaches the pipeline: HTTP versions other than 1.0/1.1,
// and `Upgrade` requests that are not WebSocket handshakes. Both answer once and close the connection, so
// nothing that follows on it (a pipelined or smuggled request) is ever parsed, let alone forwarded.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../audit/index.ts';
import { GatewayError, sendProblem, writeProblemToSocket } from '../core/index.ts';
import { notWebSocketHandshake } from '../proxy/index.ts';

/** Connections answered by a protocol refusal: requests pipelined behind it are dropped, not handled. */
const closing = new WeakSet<object>();

/**
 * node:http's shouldUpgradeCallback (called only for requests its parser flags as upgrades: `Connection:
 * upgrade` with `Upgrade`): every one is taken, WebSocket or not. One it does not take is served as a plain
 * request and the rest of that socket read is dropped (the bytes that follow are then parsed out of step: a
 * request smuggled in a body arrives as a request of its own).
 */
export function takesEveryUpgrade(req: IncomingMessage): boolean {
  return req.headers.upgrade !== undefined;
}

/** The refusal for a request the pipeline must not see; `upgrade`: it arrived as an upgrade. */
export function protocolRefusal(req: IncomingMessage, upgrade: boolean): GatewayError | undefined {
  // This listener speaks HTTP/1 only (HTTP/2 would come through ALPN on a server of its own); node would serve
  // 0.9 and 2.0 request lines as 1.1.
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) {
    return new GatewayError('GW_ERR_HTTP_VERSION', `HTTP/${req.httpVersion} is not supported: HTTP/1.0 and HTTP/1.1 only`);
  }
  if (upgrade) {
    const why = notWebSocketHandshake(req);
    return why === undefined ? undefined : new GatewayError('GW_ERR_BAD_REQUEST', why);
  }
  // A plain request with Upgrade (no `Connection: upgrade`) is no handshake either.
  return hasUpgradeHeader(req.rawHeaders) ? new GatewayError('GW_ERR_BAD_REQUEST', 'Upgrade is not a WebSocket handshake') : undefined;
}

/** Read from the raw list: req.headers would build node's header object on every plain request. */
function hasUpgradeHeader(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 7 && name.toLowerCase() === 'upgrade') return true;
  }
  return false;
}

function logRefusal(log: Logger, err: GatewayError, socket: Duplex, id: string): void {
  log.info({ msg: 'client error', code: err.code, reason: err.detail, req_id: id, client_ip: (socket as Socket).remoteAddress }, 'client error');
}

/** An upgrade: the socket is ours. Answer, then destroy it once the answer is flushed. */
export function refuseUpgrade(socket: Duplex, err: GatewayError, log: Logger): void {
  const id = randomUUID();
  logRefusal(log, err, socket, id);
  socket.once('finish', () => socket.destroy());
  socket.on('error', () => socket.destroy());
  writeProblemToSocket(socket, err, id);
}

/** A plain request: answered in order after any earlier pipelined response, then the connection closes. */
export function refuseRequest(req: IncomingMessage, res: ServerResponse, err: GatewayError, log: Logger): void {
  const id = randomUUID();
  closing.add(req.socket);
  logRefusal(log, err, req.socket, id);
  res.shouldKeepAlive = false;
  sendProblem(res, err, id, ['connection', 'close']);
}

/** A request pipelined behind a protocol refusal: the connection is closing, nothing more is handled. */
export function isClosing(req: IncomingMessage): boolean {
  return closing.has(req.socket);
}
