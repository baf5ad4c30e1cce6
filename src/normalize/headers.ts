// Header hygiene: one pass over the raw headers that drops everything a client could use to spoof
// identity, client address or routing, and refuses ambiguous framing. Built per config, run per request.
import { GatewayError } from '../core/index.ts';
import { traceIdOf, validTracestate } from './trace.ts';

/** Always dropped on the way in (compared after lower-casing and mapping '_' to '-'). */
const STRIPPED = new Set([
  // hop-by-hop (RFC 9110 §7.6.1) and framing the forwarder sets itself
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host',
  // rewrites that some backends honour (IIS, Symfony, Zend), and the auth-request descriptions of nginx and
  // ingress-nginx (read only by /.zt/verify, from trusted proxies)
  'x-original-url', 'x-original-uri', 'x-original-method', 'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override',
  // client-address claims: rebuilt by the gateway
  'forwarded', 'x-real-ip', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip', 'x-request-id',
]);
const STRIPPED_PREFIXES = ['proxy-', 'x-forwarded-'];
/**
 * Names the gateway frames with or reads identity from. Their exact spelling passes (it is handled), but
 * an `_` spelling (`Content_Length`, `Authorization_`) is dropped: CGI/WSGI-style backends and some proxies
 * map `_` and `-` to the same variable, so it would collide with the real one the gateway checked or set.
 */
const UNDERSCORE_SPELLINGS_DROPPED = new Set(['content-length', 'authorization', 'cookie']);

export interface HeaderPolicy {
  /** Lower-case identity prefix, e.g. 'x-zt-'. */
  readonly identityPrefix: string;
  /**
   * tracing.propagate: traceparent/tracestate are validated (invalid ones dropped) and the trace id is read.
   * Off, the gateway neither reads nor changes them: they are forwarded like any other header.
   */
  readonly tracing?: boolean;
}

export interface InboundHeaders {
  /** Flat [name, value, name, value, …] list that is safe to forward; the gateway appends its own. */
  readonly forward: string[];
  readonly host: string | undefined;
  readonly authorization: string | undefined;
  readonly xForwardedFor: string | undefined;
  /** Forwarded, X-Forwarded-Proto, X-Forwarded-Host as received (lines joined): believed only from trusted proxies. */
  readonly forwarded: string | undefined;
  readonly xForwardedProto: string | undefined;
  readonly xForwardedHost: string | undefined;
  readonly requestId: string | undefined;
  readonly hasBody: boolean;
  /** The trace id of a valid traceparent (only with tracing on). */
  readonly traceId: string | undefined;
}

function canonicalName(lower: string): string {
  return lower.includes('_') ? lower.replaceAll('_', '-') : lower;
}

function isStrippedName(name: string, policy: HeaderPolicy): boolean {
  if (STRIPPED.has(name)) return true;
  if (name.startsWith(policy.identityPrefix)) return true;
  for (const p of STRIPPED_PREFIXES) if (name.startsWith(p)) return true;
  return false;
}

export function isStripped(lowerName: string, policy: HeaderPolicy): boolean {
  if (!lowerName.includes('_')) return isStrippedName(lowerName, policy);
  // `_` spellings, also with a leading or trailing `_` (`Host_` is HTTP_HOST_ to CGI, `host` to a trimming parser).
  const folded = lowerName.replaceAll('_', '-');
  const trimmed = folded.replace(/^-+|-+$/g, '');
  return (
    isStrippedName(folded, policy) ||
    isStrippedName(trimmed, policy) ||
    UNDERSCORE_SPELLINGS_DROPPED.has(folded) ||
    UNDERSCORE_SPELLINGS_DROPPED.has(trimmed)
  );
}

function ambiguous(detail: string): GatewayError {
  return new GatewayError('GW_ERR_AMBIGUOUS_REQUEST', detail);
}

/** Pass 2: only what is safe to forward (no stripped name, nothing Connection listed, no invalid trace context). */
function forwardable(raw: readonly string[], policy: HeaderPolicy, connectionTokens: Set<string> | null, dropTraceparent: boolean, dropTracestate: boolean): string[] {
  const forward: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (isStripped(lower, policy)) continue;
    if (connectionTokens !== null && connectionTokens.has(canonicalName(lower))) continue;
    if ((dropTraceparent && lower === 'traceparent') || (dropTracestate && lower === 'tracestate')) continue;
    forward.push(name, raw[i + 1] as string);
  }
  return forward;
}

export function inspectHeaders(raw: readonly string[], policy: HeaderPolicy): InboundHeaders {
  let host: string | undefined;
  let authorization: string | undefined;
  let contentLength: string | undefined;
  let transferEncoding = false;
  let xff: string | undefined;
  let forwarded: string | undefined;
  let xfp: string | undefined;
  let xfh: string | undefined;
  let requestId: string | undefined;
  let connectionTokens: Set<string> | null = null;
  let traceparents: string[] | null = null;
  let tracestates: string[] | null = null;

  // Pass 1: framing, duplicates, and the names the client listed in Connection.
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    switch (lower) {
      case 'host':
        if (host !== undefined) throw new GatewayError('GW_ERR_BAD_HOST', 'duplicate Host header');
        host = value;
        break;
      case 'authorization':
        if (authorization !== undefined) throw ambiguous('duplicate Authorization header');
        authorization = value;
        break;
      case 'content-length':
        if (contentLength !== undefined) throw ambiguous('duplicate Content-Length header');
        contentLength = value;
        break;
      case 'transfer-encoding':
        transferEncoding = true;
        break;
      case 'x-forwarded-for':
        xff = xff === undefined ? value : `${xff}, ${value}`;
        break;
      case 'forwarded':
        forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        break;
      // Repeated lines join with ',' so they fail validation instead of one of them being picked.
      case 'x-forwarded-proto':
        xfp = xfp === undefined ? value : `${xfp},${value}`;
        break;
      case 'x-forwarded-host':
        xfh = xfh === undefined ? value : `${xfh},${value}`;
        break;
      case 'x-request-id':
        requestId = value;
        break;
      case 'traceparent':
        if (policy.tracing) (traceparents ??= []).push(value);
        break;
      case 'tracestate':
        if (policy.tracing) (tracestates ??= []).push(value);
        break;
      case 'connection':
        for (const token of value.split(',')) {
          const t = token.trim().toLowerCase();
          if (t) (connectionTokens ??= new Set()).add(canonicalName(t));
        }
        break;
    }
  }
  if (transferEncoding && contentLength !== undefined) throw ambiguous('Content-Length together with Transfer-Encoding');
  if (contentLength !== undefined && !/^\d{1,15}$/.test(contentLength)) throw ambiguous('invalid Content-Length');

  const traceId = traceparents === null ? undefined : traceIdOf(traceparents);
  const dropTraceparent = traceparents !== null && traceId === undefined;
  const dropTracestate = tracestates !== null && (traceId === undefined || !validTracestate(tracestates));

  const forward = forwardable(raw, policy, connectionTokens, dropTraceparent, dropTracestate);
  const hasBody = transferEncoding || (contentLength !== undefined && contentLength !== '0');
  return { forward, host, authorization, xForwardedFor: xff, forwarded, xForwardedProto: xfp, xForwardedHost: xfh, requestId, hasBody, traceId };
}
