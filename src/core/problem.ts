// Writing refusals: to a ServerResponse, or to a raw socket (client errors, CONNECT, refused upgrades).
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { toProblem } from './errors.ts';
import { grpcMessage, grpcStatusOf, isGrpcResponse, respondTrailersOnly } from './grpc.ts';

export function sendProblem(res: ServerResponse, err: unknown, requestId: string, extra: readonly string[] = []): string {
  const problem = toProblem(err, requestId);
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return problem.code;
  }
  if (isGrpcResponse(res)) return sendGrpcStatus(res, problem.status, problem.code, JSON.parse(problem.body).detail as string, requestId);
  const headers = problem.headers.flat();
  for (let i = 0; i < extra.length; i += 2) {
    // The problem's own headers (nosniff, content-type) stay; add the security headers it lacks.
    if (!problem.headers.some(([n]) => n === extra[i])) headers.push(extra[i] as string, extra[i + 1] as string);
  }
  headers.push('x-request-id', requestId);
  if (isHttp2(res)) dropConnectionHeaders(headers);
  res.writeHead(problem.status, headers);
  res.end(problem.body);
  return problem.code;
}

/** A trailers-only gRPC error: HTTP 200 and grpc-status / grpc-message in the only HEADERS frame. */
function sendGrpcStatus(res: ServerResponse, status: number, code: string, detail: string, requestId: string): string {
  // The wire says 200 + grpc-status; the access log, audit record and metrics keep the refusal's HTTP status.
  respondTrailersOnly(res, 200, [
    'content-type', 'application/grpc',
    'grpc-status', String(grpcStatusOf(status)),
    'grpc-message', grpcMessage(`${code}: ${detail}`),
    'x-request-id', requestId,
  ]);
  res.statusCode = status;
  return code;
}

/** An HTTP/2 (compat) response: it has a stream, and node refuses connection-specific fields on it. */
export function isHttp2(res: ServerResponse): boolean {
  return (res as { stream?: unknown }).stream !== undefined;
}

/**
 * Cuts a response whose head was already sent, so the client sees it was not complete. HTTP/1.1: the
 * connection is destroyed (a body short of its length, or no last chunk). HTTP/2: the stream is reset with
 * an error code; destroying it without one sends RST_STREAM NO_ERROR, which a client reads as a clean end.
 */
export function abortResponse(res: ServerResponse, code: 'cancel' | 'internal'): void {
  const stream = (res as { stream?: { close(code: number): void; destroyed: boolean } }).stream;
  if (stream === undefined) return void res.destroy();
  if (!stream.destroyed) stream.close(code === 'cancel' ? 0x8 : 0x2); // NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR
}

function dropConnectionHeaders(headers: string[]): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = (headers[i] as string).toLowerCase();
    if (name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding' || name === 'upgrade' || name === 'proxy-connection') headers.splice(i, 2);
  }
}

/** For sockets that have no ServerResponse: answer once, then close. */
export function writeProblemToSocket(socket: Duplex, err: unknown, requestId: string): string {
  const problem = toProblem(err, requestId);
  if (socket.writable && !socket.destroyed) {
    let head = `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\n`;
    for (const [name, value] of problem.headers) head += `${name}: ${value}\r\n`;
    head += `x-request-id: ${requestId}\r\nconnection: close\r\n\r\n`;
    socket.end(head + problem.body);
  } else socket.destroy();
  return problem.code;
}
