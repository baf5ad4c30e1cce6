// Forward-auth: the request a trusted proxy asks about, read from its X-Forwarded-Method/Proto/Host/Uri
// and canonicalized exactly like a request target we received ourselves (the same refusals, 400).
import { type RequestContext, GatewayError } from '../core/index.ts';
import { canonicalHost } from './host.ts';
import { canonicalTarget } from './target.ts';
import { checkMethod, checkTargetLength } from './request-line.ts';

const NAMES = ['x-forwarded-method', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-uri'] as const;
type Name = (typeof NAMES)[number];

/** Exactly one of each: a second value is as ambiguous as a second Host header. */
function forwardedHeaders(raw: readonly string[]): Record<Name, string> {
  const found: Partial<Record<Name, string>> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase() as Name;
    if (!NAMES.includes(name)) continue;
    if (found[name] !== undefined) throw new GatewayError('GW_ERR_AMBIGUOUS_REQUEST', `duplicate ${name} header`);
    found[name] = raw[i + 1] as string;
  }
  for (const name of NAMES) {
    if (found[name] === undefined) throw new GatewayError('GW_ERR_BAD_REQUEST', `forward-auth needs the ${name} header`);
  }
  return found as Record<Name, string>;
}

/**
 * The context of the request being checked. Client address, request id, Authorization and the trust in
 * the proxy come from the verify request itself (already normalized); identity headers for the answer
 * collect in upstreamHeaders.
 */
export function forwardedContext(outer: RequestContext, rawHeaders: readonly string[], maxTargetBytes: number): RequestContext<never> {
  const h = forwardedHeaders(rawHeaders);
  const method = h['x-forwarded-method'];
  checkMethod(method);
  const proto = h['x-forwarded-proto'].toLowerCase();
  if (proto !== 'https' && proto !== 'http') throw new GatewayError('GW_ERR_BAD_REQUEST', 'X-Forwarded-Proto must be http or https');
  const uri = h['x-forwarded-uri'];
  checkTargetLength(uri, maxTargetBytes);
  // Origin form only: the proxy forwards the request line it received, `/path?query`.
  if (uri.charCodeAt(0) !== 47) throw new GatewayError('GW_ERR_BAD_REQUEST', 'X-Forwarded-Uri must be an origin-form target (/path?query)');
  // Everything else (client address, request id, credentials, trust in the proxy) is the verify request's.
  return {
    ...outer,
    method,
    host: canonicalHost(h['x-forwarded-host']),
    target: canonicalTarget(uri),
    secure: proto === 'https',
    forwardedProto: proto,
    hasBody: false,
    upstreamHeaders: [],
    route: undefined,
    identity: null,
    decision: null,
  };
}
