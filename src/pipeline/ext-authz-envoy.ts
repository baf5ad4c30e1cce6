// Envoy's ext_authz gRPC Check, transport-free: who may ask (trusted_proxies or a verified client certificate,
// judged against the state current when the call arrives), the checked request decided exactly as
// /.zt/verify decides it (ext-authz.ts), and one audit record, metrics update and access-log line per call.
// The gRPC plumbing (grpc-js, the protos, CheckRequest/CheckResponse) is server/ext-authz-grpc.ts.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../audit/index.ts';
import { GatewayError, toProblem } from '../core/index.ts';
import { factsFromError } from '../metrics/index.ts';
import { plainAddress, REQUEST_ID, traceIdOf } from '../normalize/index.ts';
import { checkContext, decideCheck, type CheckAnswer } from './ext-authz.ts';
import { endExchange, type Outcome } from './exchange.ts';
import type { PipelineContext } from './route.ts';
import type { RuntimeHandle, RuntimeState } from './state.ts';

/** The parts of an Envoy CheckRequest (attributes.request.http, attributes.source) the decision reads. */
export interface EnvoyCheckRequest {
  readonly method: string;
  readonly scheme: string;
  /** Host / :authority. */
  readonly host: string;
  /** The request target, path and query, undecoded. */
  readonly path: string;
  /** Header lines [name, value, …] from the request's headers (or header_map). */
  readonly headers: readonly string[];
  /** Envoy's x-request-id. */
  readonly requestId: string | undefined;
  /** The downstream client's address as Envoy saw it (attributes.source). */
  readonly sourceIp: string | undefined;
}

/** The gRPC caller: its address, and whether it presented a certificate that chains to ext_authz.tls.client_ca. */
export interface EnvoyCaller {
  readonly peerIp: string;
  readonly verifiedCertificate: boolean;
}

export type EnvoyCheckResult =
  /** The caller may not ask (audited as 403): the transport answers PERMISSION_DENIED, no CheckResponse. */
  | { readonly kind: 'untrusted' }
  /**
   * `remove`: for an allowed request, every identity-header spelling Envoy must delete before forwarding (the
   * route's spoofable names and whatever under the identity prefix the request carries), minus those the answer sets.
   * `security`: the security headers (flat) that go with a denial.
   */
  | { readonly kind: 'answer'; readonly id: string; readonly answer: CheckAnswer; readonly remove: readonly string[]; readonly security: readonly string[] };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\0\r\n]/;

/**
 * The header lines a gRPC caller sends are not parsed by node:http: refuse what it would have refused (names that
 * are not tokens, CR/LF/NUL in values) and what it would not have read (more than max_header_bytes).
 */
function checkHeaderLines(headers: readonly string[], maxBytes: number): void {
  let bytes = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const value = headers[i + 1] as string;
    if (!TOKEN.test(name)) throw new GatewayError('GW_ERR_BAD_REQUEST', 'a header name of the checked request is not a token');
    if (BAD_VALUE.test(value)) throw new GatewayError('GW_ERR_BAD_REQUEST', 'a header value of the checked request contains CR, LF or NUL');
    bytes += name.length + value.length + 4;
  }
  if (bytes > maxBytes) throw new GatewayError('GW_ERR_HEADERS_TOO_LARGE');
}

/** Removals apply after additions in Envoy: never list a name the answer sets (it would delete it). */
function removals(state: RuntimeState, request: EnvoyCheckRequest, answer: CheckAnswer): readonly string[] {
  if (answer.kind !== 'allow') return [];
  const set = new Set<string>();
  for (let i = 0; i < answer.headers.length; i += 2) set.add((answer.headers[i] as string).toLowerCase());
  const out = new Set(answer.remove);
  const prefix = state.compiled.identityPrefix;
  for (let i = 0; i < request.headers.length; i += 2) {
    const name = (request.headers[i] as string).toLowerCase();
    // Any spelling a backend may read as an identity header: case and `_` variants of the prefix.
    if (name.replaceAll('_', '-').startsWith(prefix)) out.add(name);
  }
  return [...out].filter((n) => !set.has(n));
}

/** The checked request's trace id for its record (tracing.propagate), as /.zt/ext-authz/ reads it. */
function traceOf(state: RuntimeState, headers: readonly string[]): string | undefined {
  if (!state.compiled.config.tracing.propagate) return undefined;
  const values: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === 'traceparent') values.push(headers[i + 1] as string);
  return traceIdOf(values);
}

function decideFor(state: RuntimeState, request: EnvoyCheckRequest, caller: EnvoyCaller, id: string, startNs: bigint): { ctx: PipelineContext; answer: Promise<CheckAnswer> } {
  checkHeaderLines(request.headers, state.compiled.config.listen.limits.max_header_bytes);
  const peerIp = plainAddress(caller.peerIp);
  const source = request.sourceIp === undefined ? '' : plainAddress(request.sourceIp);
  const ctx = checkContext(state, {
    id,
    startNs,
    method: request.method,
    scheme: request.scheme,
    host: request.host,
    target: request.path,
    headers: request.headers,
    // Envoy's view of the client (the caller is trusted); its own address when it sends none.
    clientIp: source === '' ? peerIp : source,
    peerIp,
    viaTrustedProxy: true,
    traceId: traceOf(state, request.headers),
  });
  return { ctx, answer: decideCheck(state, ctx) };
}

/** Audit and metrics facts of the answer; the HTTP status it stands for. */
function outcomeOf(answer: CheckAnswer, ctx: PipelineContext | undefined, outcome: Outcome): number {
  if (answer.kind === 'allow') {
    outcome.subject = ctx?.identity?.subject;
    outcome.authMethod = ctx?.identity?.method;
    return 200;
  }
  if (answer.kind === 'redirect') {
    factsFromError(answer.redirect, outcome);
    outcome.code = 'GW_ERR_UNAUTHENTICATED';
    return answer.status;
  }
  factsFromError(answer.error, outcome);
  outcome.code = answer.problem.code;
  return answer.problem.status;
}

/** Decides one Check call against the current runtime state; never rejects. */
export async function runEnvoyCheck(runtime: RuntimeHandle, log: Logger, request: EnvoyCheckRequest, caller: EnvoyCaller): Promise<EnvoyCheckResult> {
  const startNs = process.hrtime.bigint();
  const state = runtime.acquire();
  const outcome: Outcome = { code: undefined, subject: undefined, authMethod: undefined, forwardAuth: true };
  let ctx: PipelineContext | undefined;
  let status = 403;
  try {
    if (!caller.verifiedCertificate && !state.compiled.trustedProxies.has(plainAddress(caller.peerIp))) {
      outcome.code = 'GW_ERR_FORBIDDEN';
      outcome.requestId = randomUUID();
      return { kind: 'untrusted' };
    }
    const id = request.requestId !== undefined && REQUEST_ID.test(request.requestId) ? request.requestId : randomUUID();
    let answer: CheckAnswer;
    try {
      const decided = decideFor(state, request, caller, id, startNs);
      ctx = decided.ctx;
      answer = await decided.answer;
    } catch (error) {
      // Refused before the decision (headers, method, host, target): a denial like any other.
      answer = { kind: 'deny', error, problem: toProblem(error, id) };
      outcome.requestId = id;
    }
    status = outcomeOf(answer, ctx, outcome);
    if (status >= 500 && answer.kind === 'deny') {
      const { error } = answer;
      log.warn({ req_id: id, code: outcome.code, err: error instanceof GatewayError ? error.cause : error }, 'ext_authz check failed');
    }
    return { kind: 'answer', id, answer, remove: removals(state, request, answer), security: (ctx?.route ?? state.compiled).security.flat };
  } finally {
    endExchange(runtime, state, log, { kind: 'request', req: { method: request.method, socket: { remoteAddress: caller.peerIp } }, ctx, status, outcome, startNs, completed: true });
  }
}
