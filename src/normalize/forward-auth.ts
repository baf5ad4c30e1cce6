// Forward-auth: the request a trusted proxy asks about, read from its X-Forwarded-Method/Proto/Host/Uri (nginx
// auth_request, Traefik) or ingress-nginx's X-Original-URL/-Method, and canonicalized exactly like a request
// target we received ourselves (the same refusals, 400).
import { type RequestContext, GatewayError } from '../core/index.ts';
import { canonicalHost } from './host.ts';
import { canonicalTarget } from './target.ts';
import { checkMethod, checkTargetLength } from './request-line.ts';

const FORWARDED = ['x-forwarded-method', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-uri'] as const;
const NAMES = [...FORWARDED, 'x-original-url', 'x-original-method'] as const;
type Name = (typeof NAMES)[number];

/** The request a proxy describes: method, scheme, authority and origin-form target, all still unchecked. */
export interface DescribedRequest {
  readonly method: string;
  readonly proto: string;
  readonly host: string;
  readonly target: string;
}

/** Exactly one of each: a second value is as ambiguous as a second Host header. */
function describingHeaders(raw: readonly string[]): Partial<Record<Name, string>> {
  const found: Partial<Record<Name, string>> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase() as Name;
    if (!NAMES.includes(name)) continue;
    if (found[name] !== undefined) throw new GatewayError('GW_ERR_AMBIGUOUS_REQUEST', `duplicate ${name} header`);
    found[name] = raw[i + 1] as string;
  }
  return found;
}

/** `$scheme://$http_host$request_uri` (ingress-nginx auth-url): split, userinfo refused. */
export function splitOriginalUrl(url: string): { proto: string; host: string; target: string } {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(url);
  if (m === null) throw new GatewayError('GW_ERR_BAD_REQUEST', 'X-Original-URL must be an absolute http(s) URL');
  const [, proto = '', host = '', rest = ''] = m;
  if (host.includes('@')) throw new GatewayError('GW_ERR_BAD_HOST', 'X-Original-URL must not carry userinfo');
  // `https://host?x` has an empty path: the request line was `/?x`.
  return { proto, host, target: rest === '' || rest.charCodeAt(0) === 63 ? `/${rest}` : rest };
}

function fromForwarded(h: Partial<Record<Name, string>>): DescribedRequest {
  for (const name of FORWARDED) {
    if (h[name] === undefined) throw new GatewayError('GW_ERR_BAD_REQUEST', `forward-auth needs the ${name} header`);
  }
  return { method: h['x-forwarded-method'] as string, proto: h['x-forwarded-proto'] as string, host: h['x-forwarded-host'] as string, target: h['x-forwarded-uri'] as string };
}

/**
 * X-Forwarded-Uri wins when present; X-Original-URL (+ X-Original-Method) stands in when it is absent. nginx's
 * auth subrequest passes the client's own headers along, so when both are present they must name the same
 * request: otherwise the client would choose which path gets checked.
 */
function describedBy(raw: readonly string[]): DescribedRequest {
  const h = describingHeaders(raw);
  const original = h['x-original-url'];
  if (original === undefined) return fromForwarded(h);
  const o = splitOriginalUrl(original);
  const method = h['x-original-method'] ?? h['x-forwarded-method'];
  if (method === undefined) throw new GatewayError('GW_ERR_BAD_REQUEST', 'forward-auth needs the x-original-method header');
  if (h['x-forwarded-uri'] === undefined) return { method, ...o };
  const f = fromForwarded(h);
  const ft = canonicalTarget(f.target);
  const ot = canonicalTarget(o.target);
  const same =
    ft.path === ot.path &&
    ft.query === ot.query &&
    canonicalHost(f.host).authority === canonicalHost(o.host).authority &&
    f.proto.toLowerCase() === o.proto.toLowerCase() &&
    (h['x-original-method'] === undefined || h['x-original-method'] === f.method);
  if (!same) throw new GatewayError('GW_ERR_AMBIGUOUS_REQUEST', 'X-Forwarded-Uri and X-Original-URL name different requests');
  return f;
}

/**
 * The context of a request described by a trusted caller. Client address, request id, credentials and the
 * trust in the caller are the outer context's; identity headers for the answer collect in upstreamHeaders.
 */
export function describedContext(outer: RequestContext, d: DescribedRequest, maxTargetBytes: number): RequestContext<never> {
  checkMethod(d.method);
  const proto = d.proto.toLowerCase();
  if (proto !== 'https' && proto !== 'http') throw new GatewayError('GW_ERR_BAD_REQUEST', 'the checked request must be http or https');
  checkTargetLength(d.target, maxTargetBytes);
  // Origin form only: the caller forwards the request line it received, `/path?query`.
  if (d.target.charCodeAt(0) !== 47) throw new GatewayError('GW_ERR_BAD_REQUEST', 'the checked target must be origin-form (/path?query)');
  return {
    ...outer,
    method: d.method,
    host: canonicalHost(d.host),
    target: canonicalTarget(d.target),
    secure: proto === 'https',
    forwardedProto: proto,
    hasBody: false,
    upstreamHeaders: [],
    route: undefined,
    identity: null,
    decision: null,
  };
}

/** The context of the request a /.zt/verify call asks about (X-Forwarded-* or X-Original-*). */
export function forwardedContext(outer: RequestContext, rawHeaders: readonly string[], maxTargetBytes: number): RequestContext<never> {
  return describedContext(outer, describedBy(rawHeaders), maxTargetBytes);
}
