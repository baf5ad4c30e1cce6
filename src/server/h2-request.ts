// An HTTP/2 request made to look, to the pipeline, exactly like the HTTP/1.1 request it stands for:
// `:authority` gives Host (a different `host` field is refused), pseudo-headers are never headers, cookie
// fields are joined (RFC 9113 §8.2.3), a body without Content-Length is marked as framed, and req.socket
// is the connection's real socket (client certificates, client-trust tracking, byte counts).
// Refusals at this edge: what nghttp2 lets through but HTTP/2 forbids, CONNECT, and a `:authority` the
// connection's certificate does not cover (421: browsers coalesce connections across host names).
import { X509Certificate } from 'node:crypto';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { GatewayError } from '../core/index.ts';

/** Connection-specific fields (RFC 9113 §8.2.2); nghttp2 refuses them too, this is the second line. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

export interface AdaptedRequest {
  readonly rawHeaders: string[];
  /** The host name of the authority (lower-case, no port), for the certificate check. */
  readonly hostName: string;
}

function refuse(detail: string): GatewayError {
  return new GatewayError('GW_ERR_BAD_REQUEST', detail);
}

function hostNameOf(authority: string): string {
  const a = authority.toLowerCase();
  if (a.startsWith('[')) return a.slice(1, Math.max(1, a.indexOf(']')));
  const colon = a.indexOf(':');
  const name = colon < 0 ? a : a.slice(0, colon);
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** Throws the refusal, or returns the HTTP/1.1-shaped header list the pipeline reads. */
export function adaptHeaders(raw: readonly string[], method: string, hasBody: boolean, maxHeaderBytes: number): AdaptedRequest {
  // The header list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2): nghttp2 advertises
  // the limit but does not enforce it on what it receives.
  let size = 0;
  for (let i = 0; i < raw.length; i++) size += (raw[i] as string).length + (i % 2 === 0 ? 32 : 0);
  if (size > maxHeaderBytes) throw new GatewayError('GW_ERR_HEADERS_TOO_LARGE');
  if (method === 'CONNECT') throw new GatewayError('GW_ERR_BAD_METHOD', 'CONNECT is not supported');
  let authority: string | undefined;
  let host: string | undefined;
  let contentLength = false;
  let cookies: string[] | undefined;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value;
      else if (name === ':protocol') throw refuse('extended CONNECT is not supported');
      continue; // :method, :path, :scheme are read by node into req.method / req.url
    }
    if (name !== name.toLowerCase()) throw refuse('upper-case header name in an HTTP/2 request');
    if (CONNECTION_SPECIFIC.has(name)) throw refuse(`connection-specific header ${name} in an HTTP/2 request`);
    if (name === 'te' && value.trim().toLowerCase() !== 'trailers') throw refuse('te other than trailers in an HTTP/2 request');
    if (name === 'cookie') {
      (cookies ??= []).push(value);
      continue;
    }
    if (name === 'host') {
      if (host !== undefined) throw new GatewayError('GW_ERR_BAD_HOST', 'duplicate Host header');
      host = value;
      continue;
    }
    if (name === 'content-length') contentLength = true;
    out.push(name, value);
  }
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
    throw new GatewayError('GW_ERR_BAD_HOST', ':authority and host disagree');
  }
  const effective = authority ?? host;
  if (effective !== undefined) out.unshift('host', effective);
  if (cookies !== undefined) out.push('cookie', cookies.join('; '));
  // A body with no Content-Length is framed by DATA frames: to the pipeline (and the HTTP/1.1 upstream) it
  // is a chunked body. nghttp2 refused a client's own transfer-encoding above.
  if (hasBody && !contentLength) out.push('transfer-encoding', 'chunked');
  return { rawHeaders: out, hostName: effective === undefined ? '' : hostNameOf(effective) };
}

/** Certificates seen on connections, parsed once each (a handful: the listener's and its SNI ones). */
const parsed = new Map<string, X509Certificate>();

function certificateOf(socket: TLSSocket): X509Certificate | undefined {
  const local = socket.getCertificate();
  if (local === null || !('raw' in local) || local.raw === undefined) return undefined;
  const key = local.fingerprint256;
  let cert = parsed.get(key);
  if (cert === undefined) {
    if (parsed.size >= 64) parsed.clear(); // rotated certificates: bounded
    parsed.set(key, (cert = new X509Certificate(local.raw)));
  }
  return cert;
}

const covered = new WeakMap<Socket, Map<string, boolean>>();

/** Whether the certificate this TLS connection presented covers `name` (memoised per connection). */
export function certificateCovers(socket: Socket, name: string): boolean {
  const tls = socket as TLSSocket;
  if (typeof tls.getCertificate !== 'function') return true; // h2c: no certificate to coalesce on
  let memo = covered.get(socket);
  const known = memo?.get(name);
  if (known !== undefined) return known;
  const cert = certificateOf(tls);
  const ok = cert !== undefined && (isIP(name) !== 0 ? cert.checkIP(name) !== undefined : cert.checkHost(name) !== undefined);
  if (memo === undefined) covered.set(socket, (memo = new Map()));
  if (memo.size < 32) memo.set(name, ok);
  return ok;
}

/** Makes req read like an HTTP/1.1 request to the pipeline (own properties shadow the compat getters). */
export function presentAsHttp1(req: Http2ServerRequest, res: Http2ServerResponse, adapted: AdaptedRequest, socket: Socket): void {
  Object.defineProperty(req, 'rawHeaders', { value: adapted.rawHeaders, configurable: true });
  Object.defineProperty(req, 'socket', { value: socket, configurable: true });
  // The compat response has no `destroyed`: a stream the client reset must read as a response that is gone
  // (else a forward started after the reset would wait for a 'drain' that never comes).
  const stream = req.stream;
  Object.defineProperty(res, 'destroyed', { get: () => stream.destroyed || stream.closed, configurable: true });
  // ...and compat's writableFinished is true for any closed stream, a reset one included: only a stream
  // whose writable side finished (END_STREAM sent) has a complete response.
  const reset = (): boolean => stream.rstCode !== undefined && stream.rstCode !== 0;
  Object.defineProperty(res, 'writableFinished', { get: () => res.writableEnded && stream.writableFinished && !reset(), configurable: true });
}
