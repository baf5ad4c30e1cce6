// HTTP/2 requests at the listener's edge: the per-stream request timer, the HTTP/2-only refusals and the 421
// check, then the request is presented to the pipeline as HTTP/1.1 (h2-request.ts). Also h2c with prior
// knowledge on a plain listener (listen.h2c).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../audit/index.ts';
import type { CompiledConfig } from '../pipeline/index.ts';
import { GatewayError, isGrpcContentType, markGrpc, sendProblem } from '../core/index.ts';
import { H2Sessions, h2Options } from './h2.ts';
import { adaptHeaders, certificateCovers, presentAsHttp1 } from './h2-request.ts';

export function createH2RequestHandler(
  sessions: H2Sessions,
  compiled: CompiledConfig,
  pipeline: (req: IncomingMessage, res: ServerResponse) => void,
  log: Logger,
): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  const limits = compiled.config.listen.limits;
  return (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    const stream = req.stream;
    const socket = sessions.socketOf(stream.session as ServerHttp2Session | undefined);
    if (socket === undefined) return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    const asH1 = res as unknown as ServerResponse;
    if (isGrpcContentType(req.headers['content-type'])) markGrpc(asH1); // its refusals become gRPC statuses
    // request_timeout per stream: the whole request (headers were atomic) must have arrived by then. A
    // request without a body (END_STREAM on its HEADERS) is complete already: no timer.
    if (!stream.endAfterHeaders) {
      const timer = setTimeout(() => {
        if (req.complete) return;
        if (!res.headersSent) refuseH2(asH1, new GatewayError('GW_ERR_REQUEST_TIMEOUT'), socket, log);
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, limits.request_timeout);
      timer.unref();
      req.once('end', () => clearTimeout(timer));
      stream.once('close', () => clearTimeout(timer));
    }
    let adapted;
    try {
      adapted = adaptHeaders(req.rawHeaders, req.method, !stream.endAfterHeaders, limits.max_header_bytes);
      if (compiled.tls && adapted.hostName !== '' && !certificateCovers(socket, adapted.hostName)) {
        throw new GatewayError('GW_ERR_MISDIRECTED', 'this connection\'s certificate does not cover that host: open a new connection');
      }
    } catch (err) {
      if (stream.destroyed || stream.closed) return;
      return refuseH2(asH1, err, socket, log);
    }
    presentAsHttp1(req, res, adapted, socket);
    pipeline(req as unknown as IncomingMessage, asH1);
  };
}

function refuseH2(res: ServerResponse, err: unknown, socket: Socket, log: Logger): void {
  const id = randomUUID();
  const code = sendProblem(res, err, id);
  log.info({ msg: 'client error', code, reason: err instanceof GatewayError ? err.detail : undefined, req_id: id, client_ip: socket.remoteAddress, http: '2' }, 'client error');
}

/** The HTTP/2 connection preface: a plain connection that starts with it is h2c with prior knowledge. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * h2c (listen.h2c): the plain listener reads the first bytes of each connection; the HTTP/2 preface hands it
 * to an HTTP/2 server of its own (never listening), anything else stays with node:http as before.
 */
export function acceptPriorKnowledge(server: Server, h2: H2Sessions, request: (req: IncomingMessage, res: ServerResponse) => void, log: Logger): void {
  const h2c = http2.createServer(h2Options(h2.limits), request as never);
  h2c.on('session', (session: ServerHttp2Session) => h2.session(session));
  const plain = server.listeners('connection') as Array<(s: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && seen.length < PREFACE.length) return; // wait for the whole preface
      socket.off('data', onData);
      if (isH2) {
        // nghttp2 reads the socket's handle directly: the bytes already read reach it through a replaying stream.
        h2.connection(socket);
        h2c.emit('connection', replaying(socket, seen));
        return;
      }
      socket.pause();
      socket.unshift(seen);
      for (const l of plain) l.call(server, socket);
      socket.resume();
    };
    socket.on('data', onData);
    socket.once('error', (err) => log.debug({ err: err.message }, 'connection error before the first request'));
  });
}

/** A duplex over `socket` that first yields `seen` (the bytes read while looking for the preface). */
function replaying(socket: Socket, seen: Buffer): Duplex {
  const d = new PassThroughDuplex(socket);
  d.push(seen);
  socket.on('data', (c: Buffer) => {
    if (!d.push(c)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.on('error', (err) => d.destroy(err));
  return d;
}

class PassThroughDuplex extends Duplex {
  readonly #socket: Socket;
  constructor(socket: Socket) {
    super();
    this.#socket = socket;
  }
  override _read(): void {
    this.#socket.resume();
  }
  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#socket.write(chunk, enc, cb);
  }
  override _final(cb: () => void): void {
    this.#socket.end();
    cb();
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.#socket.destroy(err ?? undefined);
    cb(err);
  }
}
