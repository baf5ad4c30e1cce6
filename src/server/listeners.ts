// The main listener (HTTPS, or plain HTTP only when the config says so) with explicit limits, plus the
// optional HTTP→HTTPS redirect listener. Parser-level refusals get the same problem JSON as any other.
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../audit/index.ts';
import type { CompiledConfig, TlsMaterial } from '../pipeline/index.ts';
import { GatewayError, type GatewayErrorCode, writeProblemToSocket } from '../core/index.ts';
import type { SniContexts } from './sni.ts';
import { isClosing, protocolRefusal, refuseRequest, refuseUpgrade, takesEveryUpgrade } from './protocol.ts';
import { H2Sessions, h2Options } from './h2.ts';
import { acceptPriorKnowledge, createH2RequestHandler } from './h2-listener.ts';

export function secureContextOptions(tls: TlsMaterial) {
  return {
    cert: tls.cert,
    key: tls.key,
    minVersion: tls.minVersion,
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.crl ? { crl: tls.crl } : {}),
    requestCert: tls.clientAuth !== 'none',
    rejectUnauthorized: tls.clientAuth === 'require',
  } as const;
}

const PARSER_ERRORS: Record<string, GatewayErrorCode> = {
  HPE_HEADER_OVERFLOW: 'GW_ERR_HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'GW_ERR_REQUEST_TIMEOUT',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'GW_ERR_AMBIGUOUS_REQUEST',
  HPE_INVALID_TRANSFER_ENCODING: 'GW_ERR_AMBIGUOUS_REQUEST',
  HPE_INVALID_CONTENT_LENGTH: 'GW_ERR_AMBIGUOUS_REQUEST',
  HPE_INVALID_VERSION: 'GW_ERR_HTTP_VERSION',
};

export interface MainListenerHandlers {
  request: (req: IncomingMessage, res: ServerResponse) => void;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export interface MainListener {
  /** node:http's Server, or node:http2's secure server with HTTP/1.1 fallback (same listen/close/upgrade API). */
  readonly server: Server;
  /** The HTTP/2 sessions (listen.http2 on TLS, or h2c); undefined when the listener speaks HTTP/1.1 only. */
  readonly h2: H2Sessions | undefined;
}

/** HTTP/2 on this listener: default with TLS (listen.http2), h2c only when enabled on a plain one. */
export function speaksHttp2(compiled: CompiledConfig): boolean {
  const listen = compiled.config.listen;
  return compiled.tls ? listen.http2 !== false : listen.h2c;
}

export function createMainListener(compiled: CompiledConfig, handlers: MainListenerHandlers, log: Logger, sni?: SniContexts): MainListener {
  const limits = compiled.config.listen.limits;
  const options = {
    maxHeaderSize: limits.max_header_bytes,
    requestTimeout: limits.request_timeout,
    headersTimeout: limits.headers_timeout,
    keepAliveTimeout: limits.keep_alive_timeout,
    requireHostHeader: false, // we answer a missing Host with our own problem body
    joinDuplicateHeaders: false,
    insecureHTTPParser: false,
    noDelay: true,
    shouldUpgradeCallback: takesEveryUpgrade,
  };
  const h2 = speaksHttp2(compiled)
    ? new H2Sessions({ maxHeaderBytes: limits.max_header_bytes, requestTimeout: limits.request_timeout, idleTimeout: limits.keep_alive_timeout })
    : undefined;
  // Protocol refusals first (server/protocol.ts): a version other than 1.0/1.1, an Upgrade that is not a
  // WebSocket handshake. Either closes the connection, so nothing behind it on the socket is handled.
  const request = (req: IncomingMessage, res: ServerResponse): void => {
    if (h2Request !== undefined && req.httpVersionMajor === 2) return h2Request(req as unknown as Http2ServerRequest, res as unknown as Http2ServerResponse);
    if (isClosing(req)) return;
    const refusal = protocolRefusal(req, false);
    if (refusal) return refuseRequest(req, res, refusal, log);
    handlers.request(req, res);
  };
  const h2Request = h2 === undefined ? undefined : createH2RequestHandler(h2, compiled, handlers.request, log);
  const server: Server = compiled.tls
    ? h2 !== undefined
      ? (http2.createSecureServer(
          { ...options, ...h2Options(h2.limits), allowHTTP1: true, ALPNProtocols: ['h2', 'http/1.1'], ...secureContextOptions(compiled.tls), ...(sni ? { SNICallback: sni.callback } : {}) },
          request as never,
        ) as unknown as Server)
      : https.createServer({ ...options, ...secureContextOptions(compiled.tls), ...(sni ? { SNICallback: sni.callback } : {}) }, request)
    : http.createServer(options, request);
  if (h2 !== undefined && compiled.tls) {
    // HTTP/1.1 on the same listener keeps every limit it had (node:http2 reads them from the server object).
    Object.assign(server, options);
    server.prependListener('secureConnection', (s: Socket) => h2.connection(s));
    server.on('session', (session: ServerHttp2Session) => h2.session(session));
  }
  if (h2 !== undefined && !compiled.tls) acceptPriorKnowledge(server, h2, request, log);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = protocolRefusal(req, true);
    if (refusal) return refuseUpgrade(socket, refusal, log);
    handlers.upgrade(req, socket, head);
  });
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    // node:http2's compat layer hands an HTTP/2 CONNECT here with a response in place of a socket.
    if (h2Request !== undefined && req.httpVersionMajor === 2) return h2Request(req as unknown as Http2ServerRequest, socket as unknown as Http2ServerResponse);
    writeProblemToSocket(socket, new GatewayError('GW_ERR_BAD_METHOD', 'CONNECT is not supported'), randomUUID());
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const code = PARSER_ERRORS[err.code ?? ''] ?? 'GW_ERR_BAD_REQUEST';
    log.info({ msg: 'client error', code, parser: err.code, client_ip: (socket as Socket).remoteAddress }, 'client error');
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    writeProblemToSocket(socket, new GatewayError(code), randomUUID());
  });
  server.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'tls handshake failed'));
  return { server, h2 };
}

/** Plain-HTTP listener that only redirects to the HTTPS entry point (same host, same path). */
export function createRedirectListener(httpsPort: () => number): Server {
  return http.createServer({ requireHostHeader: false }, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!/^[A-Za-z0-9.-]+$/.test(host) || !(req.url ?? '').startsWith('/')) {
      res.writeHead(400, { 'content-type': 'text/plain', 'content-length': '11', connection: 'close' }).end('bad request');
      return;
    }
    const port = httpsPort();
    const location = `https://${host}${port === 443 ? '' : `:${port}`}${req.url}`;
    res.writeHead(308, { location, 'content-length': '0', connection: 'close' }).end();
  });
}
