// Envoy's CheckRequest in, CheckResponse out, as the plain objects @grpc/proto-loader decodes and encodes
// (keepCase: field names as in the protos, proto/envoy/service/auth/v3/external_auth.proto). No grpc-js here.
import type { EnvoyCheckRequest, EnvoyCheckResult } from '../pipeline/index.ts';

type Obj = Readonly<Record<string, unknown>>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** header_map (encode_raw_headers: true) when Envoy sends one, else the headers map; pseudo-headers aside. */
function headerLines(http: Obj): { lines: string[]; pseudo: Map<string, string> } {
  const lines: string[] = [];
  const pseudo = new Map<string, string>();
  const add = (name: string, value: string): void => {
    if (name.startsWith(':')) pseudo.set(name, value);
    else lines.push(name, value);
  };
  const raw = obj(http.header_map).headers;
  if (Array.isArray(raw) && raw.length > 0) {
    for (const h of raw as unknown[]) {
      const { key, value, raw_value: bytes } = obj(h);
      // raw_value is the header's bytes as received: read them as node:http does (latin1).
      add(str(key), Buffer.isBuffer(bytes) && bytes.length > 0 ? bytes.toString('latin1') : str(value));
    }
  } else {
    for (const [name, value] of Object.entries(obj(http.headers))) add(name, str(value));
  }
  return { lines, pseudo };
}

/** What the decision reads of a CheckRequest. Missing fields are empty strings: the decision refuses them (400). */
export function checkRequestOf(message: unknown): EnvoyCheckRequest {
  const attributes = obj(obj(message).attributes);
  const http = obj(obj(attributes.request).http);
  const { lines, pseudo } = headerLines(http);
  const field = (name: string, header: string): string => str(http[name]) || (pseudo.get(header) ?? '');
  const source = str(obj(obj(obj(attributes.source).address).socket_address).address);
  const id = str(http.id);
  return {
    method: field('method', ':method'),
    scheme: field('scheme', ':scheme'),
    host: field('host', ':authority'),
    path: field('path', ':path'),
    headers: lines,
    requestId: id === '' ? undefined : id,
    sourceIp: source === '' ? undefined : source,
  };
}

/** google.rpc.Code for the HTTP status of a denial (Envoy reads only OK / not OK; logs and dashboards read the rest). */
export function grpcCodeFor(status: number): number {
  if (status === 401 || status === 302) return 16; // UNAUTHENTICATED
  if (status === 403) return 7; // PERMISSION_DENIED
  if (status === 404) return 5; // NOT_FOUND
  if (status === 429) return 8; // RESOURCE_EXHAUSTED
  if (status === 408 || status === 504) return 4; // DEADLINE_EXCEEDED
  if (status === 503 || status === 502) return 14; // UNAVAILABLE
  if (status >= 500) return 13; // INTERNAL
  return 3; // INVALID_ARGUMENT: a request the gateway refuses to read (400, 413, 415, 431)
}

/**
 * HeaderValueOption: identity headers replace whatever the request carried (append_action and, for Envoy
 * versions before it, the deprecated `append: false`); Set-Cookie lines are appended, one per cookie.
 */
function option(name: string, value: string): Obj {
  const append = name === 'set-cookie';
  return { header: { key: name, value }, append: { value: append }, append_action: append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

function flatOptions(flat: readonly string[]): Obj[] {
  const out: Obj[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push(option((flat[i] as string).toLowerCase(), flat[i + 1] as string));
  return out;
}

/** Envoy computes the length of the body it sends: a Content-Length from us would only be able to disagree. */
function denialHeaders(pairs: ReadonlyArray<readonly [string, string]>, security: readonly string[], id: string): Obj[] {
  const out = flatOptions(security);
  for (const [name, value] of pairs) if (name.toLowerCase() !== 'content-length') out.push(option(name.toLowerCase(), value));
  out.push(option('x-request-id', id));
  return out;
}

/** The CheckResponse for an answered call (the caller was trusted). */
export function checkResponseOf(result: Extract<EnvoyCheckResult, { kind: 'answer' }>): Obj {
  const { answer, id } = result;
  if (answer.kind === 'allow') {
    return {
      status: { code: 0 },
      ok_response: {
        headers: flatOptions(answer.headers),
        headers_to_remove: result.remove,
        response_headers_to_add: answer.cookies.map((c) => option('set-cookie', c)),
      },
    };
  }
  if (answer.kind === 'redirect') {
    return {
      status: { code: grpcCodeFor(302), message: 'login required' },
      denied_response: { status: { code: 302 }, headers: denialHeaders(answer.headers, result.security, id), body: '' },
    };
  }
  const { problem } = answer;
  return {
    status: { code: grpcCodeFor(problem.status), message: problem.code },
    denied_response: { status: { code: problem.status }, headers: denialHeaders(problem.headers, result.security, id), body: problem.body },
  };
}
