// gRPC over the gateway: a request is gRPC when its content-type is application/grpc[+proto|;…]. The
// gateway's own refusals to it are trailers-only gRPC errors (HTTP 200, grpc-status in the one HEADERS
// frame), which gRPC clients read as a status instead of "received HTTP status 401".
import type { ServerResponse } from 'node:http';

const grpcResponses = new WeakSet<object>();

export function isGrpcContentType(value: string | undefined): boolean {
  if (value === undefined || value.length < 16) return false;
  const v = value.toLowerCase();
  return v.startsWith('application/grpc') && (v.length === 16 || v[16] === '+' || v[16] === ';');
}

/** Marks a response whose request was gRPC (set by the listener, read by sendProblem). */
export function markGrpc(res: ServerResponse): void {
  grpcResponses.add(res);
}

export function isGrpcResponse(res: ServerResponse): boolean {
  return grpcResponses.has(res);
}

/** gRPC status codes (grpc/status.h) for the gateway's HTTP refusals. */
export function grpcStatusOf(httpStatus: number): number {
  switch (httpStatus) {
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 408:
    case 504:
      return 4; // DEADLINE_EXCEEDED
    case 413:
    case 429:
    case 431:
      return 8; // RESOURCE_EXHAUSTED
    case 502:
    case 503:
      return 14; // UNAVAILABLE
    case 500:
      return 13; // INTERNAL
    default:
      return httpStatus >= 400 && httpStatus < 500 ? 3 /* INVALID_ARGUMENT */ : 2; /* UNKNOWN */
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec): printable ASCII except '%' passes. */
export function grpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * `grpc-timeout` (1–8 digits and a unit H M S m u n) in milliseconds; undefined when absent or malformed.
 */
export function grpcTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = m[2] as 'H' | 'M' | 'S' | 'm' | 'u' | 'n';
  const factor = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[unit];
  return Math.max(1, Math.ceil(n * factor));
}

interface H2Stream {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  respond(headers: Record<string, string | number | string[]>, options: { endStream: boolean }): void;
}

/**
 * A trailers-only answer: one HEADERS frame with END_STREAM (node's compat response always sends an empty
 * DATA frame after its headers, which gRPC clients read as "call ended without gRPC status"). Over
 * HTTP/1.1 it is a plain response with no body.
 */
export function respondTrailersOnly(res: ServerResponse, status: number, flat: readonly string[]): void {
  const stream = (res as unknown as { stream?: H2Stream }).stream;
  if (stream === undefined) {
    res.writeHead(status, flat as string[]);
    res.end();
    return;
  }
  if (stream.headersSent || stream.destroyed) return;
  const headers: Record<string, string | number | string[]> = { ':status': status };
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  stream.respond(headers, { endStream: true });
  res.end();
}
