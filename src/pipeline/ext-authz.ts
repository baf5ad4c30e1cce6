// External authorization (Envoy ext_authz, Istio CUSTOM, Envoy Gateway extAuth): the decision on a request a
// trusted proxy holds, transport-free. The HTTP mode (/.zt/ext-authz/…, handler.ts) and the gRPC Check service
// both build a context with checkContext and answer what decideCheck returns; /.zt/verify runs the same chain.
import type { IncomingMessage } from 'node:http';
import { GatewayError, Redirect, toProblem, type ProblemResponse } from '../core/index.ts';
import { stripCookies } from '../authn/index.ts';
import { describedContext } from '../normalize/index.ts';
import { defaultHeaderNames } from '../proxy/index.ts';
import type { RuntimeState } from './state.ts';
import { resolveRoute } from './chain.ts';
import { admit } from './admit.ts';
import { isReserved } from './reserved.ts';
import type { CompiledRoute, PipelineContext } from './route.ts';

/** Envoy's `path_prefix`: the checked request's path follows it. */
export const EXT_AUTHZ_PREFIX = '/.zt/ext-authz';

/**
 * The checked request never came over the caller's connection: the caller's TLS client certificate must not
 * authenticate it or name its device. Authenticators and the device lookup see this socket, which has none.
 */
export const NO_CLIENT_TLS = Object.freeze({}) as unknown as IncomingMessage['socket'];

/** The request a trusted proxy asks about, as it describes it (nothing checked yet). */
export interface CheckInput {
  /** The caller's request id when it is trusted and valid; otherwise a fresh one. */
  readonly id: string;
  readonly startNs: bigint;
  readonly method: string;
  readonly scheme: string;
  /** Host / :authority of the checked request. */
  readonly host: string;
  /** Origin-form `/path?query` of the checked request. */
  readonly target: string;
  /** The checked request's header lines [name, value, …] (authorization, cookie, origin, sec-fetch-*). */
  readonly headers: readonly string[];
  /** The client of the checked request (the caller's view: Envoy's source address or trusted X-Forwarded-For). */
  readonly clientIp: string;
  /** The caller's own address. */
  readonly peerIp: string;
  readonly viaTrustedProxy: boolean;
  /** The trace id of the caller's valid traceparent (tracing.propagate), for the decision record. */
  readonly traceId?: string | undefined;
}

export type CheckAnswer =
  /** 200: `headers` (flat identity headers) go upstream; `remove` lists spoofable names not set; `cookies` go to the client. */
  | { readonly kind: 'allow'; readonly headers: readonly string[]; readonly remove: readonly string[]; readonly cookies: readonly string[] }
  /** A browser that must log in (or step up): 302 with Location and Set-Cookie, relayed to the client. */
  | { readonly kind: 'redirect'; readonly redirect: Redirect; readonly status: 302; readonly headers: ReadonlyArray<readonly [string, string]> }
  /** Refused: the problem answer (status, headers, JSON body); `error` for audit and metrics facts. */
  | { readonly kind: 'deny'; readonly error: unknown; readonly problem: ProblemResponse };

function singleAuthorization(headers: readonly string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'authorization') continue;
    if (found !== undefined) throw new GatewayError('GW_ERR_AMBIGUOUS_REQUEST', 'duplicate Authorization header');
    found = headers[i + 1] as string;
  }
  return found;
}

/** The checked request's context, canonicalized like a request we received (400 for what we would refuse). */
export function checkContext(state: RuntimeState, input: CheckInput): PipelineContext {
  const base: PipelineContext = {
    id: input.id,
    startNs: input.startNs,
    method: input.method,
    host: { name: '', authority: '' },
    target: { path: '/', matchPath: '/', query: '' },
    clientIp: input.clientIp,
    peerIp: input.peerIp,
    viaTrustedProxy: input.viaTrustedProxy,
    secure: false,
    authorization: singleAuthorization(input.headers),
    rawHeaders: input.headers,
    connection: NO_CLIENT_TLS,
    hasBody: false,
    upstreamHeaders: [],
    forwardedFor: input.clientIp === input.peerIp ? input.peerIp : `${input.clientIp}, ${input.peerIp}`,
    forwardedChain: undefined,
    forwardedProto: 'https',
    forwardedHost: input.host,
    traceId: input.traceId,
    route: undefined,
    identity: null,
    decision: null,
  };
  const d = { method: input.method, proto: input.scheme, host: input.host, target: input.target };
  const ctx = describedContext(base, d, state.compiled.config.listen.limits.max_target_bytes) as PipelineContext;
  return { ...ctx, forwardedHost: ctx.host.authority };
}

/**
 * Lower-case names a client could send to pose as an identity: the default names under the prefix (the gateway
 * strips the whole prefix on its own listener; behind Envoy only named headers can be removed), the route's
 * own names, every route's custom names and the credentials the route's providers read. Once per route.
 */
const spoofableByRoute = new WeakMap<CompiledRoute, readonly string[]>();

function spoofable(route: CompiledRoute, prefix: string): readonly string[] {
  let names = spoofableByRoute.get(route);
  if (names !== undefined) return names;
  const set = new Set<string>();
  for (const n of [...Object.values(defaultHeaderNames(prefix)), ...Object.values(route.identityHeaders), ...route.dropHeaders]) {
    const lower = n.toLowerCase();
    // A whole Cookie header is the app's too: withoutGatewayCookies decides about it.
    if (lower === 'cookie') continue;
    set.add(lower);
    // Envoy passes `_` spellings by default (headers_with_underscores_action: ALLOW); CGI-style apps read them.
    if (lower.includes('-')) set.add(lower.replaceAll('-', '_'));
  }
  names = Object.freeze([...set]);
  spoofableByRoute.set(route, names);
  return names;
}

/** Removals apply after additions in Envoy: a name the answer sets must not be listed, or it is deleted. */
function toRemove(state: RuntimeState, route: CompiledRoute, set: readonly string[], dropCookie: boolean): string[] {
  const setNames = new Set<string>();
  for (let i = 0; i < set.length; i += 2) setNames.add((set[i] as string).toLowerCase());
  const remove = spoofable(route, state.compiled.config.identity_headers.prefix).filter((n) => !setNames.has(n));
  if (dropCookie) remove.push('cookie');
  return remove;
}

/**
 * The gateway's cookies (session, login state) never reach the app, but a proxy cannot drop one cookie: when the
 * checked request carried any, the answer sets the whole Cookie header to the app's cookies, or drops it when
 * none is left (true). It takes effect where `cookie` is an allowed upstream header (the manifests list it).
 */
function withoutGatewayCookies(state: RuntimeState, ctx: PipelineContext, headers: string[]): boolean {
  const rp = state.compiled.rp;
  if (rp === null) return false;
  const cookies: string[] = [];
  for (let i = 0; i < ctx.rawHeaders.length; i += 2) {
    if ((ctx.rawHeaders[i] as string).toLowerCase() === 'cookie') cookies.push('cookie', ctx.rawHeaders[i + 1] as string);
  }
  if (cookies.length === 0) return false;
  const before = cookies.length;
  const pairs = cookies.filter((_, i) => i % 2 === 1).join(';').split(';').filter((p) => p.trim() !== '').length;
  stripCookies(cookies, rp.cookieName);
  const kept = cookies.filter((_, i) => i % 2 === 1).join('; ');
  if (kept === '') return true;
  // Nothing of the gateway's among them: the client's header stands as sent.
  if (cookies.length === before && kept.split('; ').length === pairs) return false;
  headers.push('cookie', kept);
  return false;
}

function redirectAnswer(redirect: Redirect): CheckAnswer {
  const headers: Array<readonly [string, string]> = [['location', redirect.location], ['cache-control', 'no-store']];
  for (const c of redirect.cookies) headers.push(['set-cookie', c]);
  return { kind: 'redirect', redirect, status: 302, headers };
}

async function decide(state: RuntimeState, ctx: PipelineContext): Promise<CheckAnswer> {
  // The gateway's own paths are routed to it directly, never checked on an app's behalf.
  if (isReserved(ctx.target.matchPath)) throw new GatewayError('GW_ERR_NO_ROUTE');
  const route = resolveRoute(state, ctx);
  const redirect = await admit(state, route, ctx);
  if (redirect !== undefined) return redirectAnswer(redirect);
  const headers = ctx.upstreamHeaders;
  const dropCookie = withoutGatewayCookies(state, ctx, headers);
  return { kind: 'allow', headers, remove: toRemove(state, route, headers, dropCookie), cookies: state.compiled.rp?.pendingCookies(ctx) ?? [] };
}

/**
 * route → limit → authenticate → authorize → mutate on the checked request, as for a request we would forward.
 * Never rejects: a refusal is a `deny` answer carrying the problem, with the context's request id.
 */
export async function decideCheck(state: RuntimeState, ctx: PipelineContext): Promise<CheckAnswer> {
  try {
    return await decide(state, ctx);
  } catch (error) {
    return { kind: 'deny', error, problem: toProblem(error, ctx.id) };
  }
}
