// normalize stage: one parse of method, target, host, client address and headers into a RequestContext.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { type RequestContext, GatewayError, type CanonicalTarget } from '../core/index.ts';
import { plainAddress, type AddressSet } from './cidr.ts';
import { trustedForwardedChain, trustedHost, trustedProto } from './forwarded.ts';
import { inspectHeaders, type HeaderPolicy } from './headers.ts';
import { canonicalHost } from './host.ts';
import { canonicalTarget } from './target.ts';
import { checkMethod, checkTargetLength } from './request-line.ts';

export { checkMethod, checkTargetLength };

export interface NormalizeOptions extends HeaderPolicy {
  readonly trustedProxies: AddressSet;
  readonly maxTargetBytes: number;
  readonly secure: boolean;
}

/** A request id believed from a trusted proxy (x-request-id, Envoy's request id); otherwise a fresh one. */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A fresh context matches no route yet (`never`): the orchestrator sets its own route type on it. */
export type Normalizer = (req: IncomingMessage, startNs: bigint) => RequestContext<never>;

export function createNormalizer(opts: NormalizeOptions): Normalizer {
  return function normalize(req, startNs) {
    const method = req.method ?? '';
    const url = req.url ?? '';
    const peerIp = plainAddress(req.socket.remoteAddress ?? '');
    const viaTrustedProxy = opts.trustedProxies.has(peerIp);
    const headers = inspectHeaders(req.rawHeaders, opts);
    const id = viaTrustedProxy && headers.requestId && REQUEST_ID.test(headers.requestId) ? headers.requestId : randomUUID();

    checkMethod(method);
    checkTargetLength(url, opts.maxTargetBytes);
    const host = canonicalHost(headers.host);
    let target: CanonicalTarget;
    if (url.charCodeAt(0) === 47) {
      target = canonicalTarget(url);
    } else if (url === '*') {
      throw new GatewayError('GW_ERR_BAD_REQUEST', 'asterisk-form request targets are not supported');
    } else {
      target = absoluteForm(url, host.authority, opts.secure);
    }

    let clientIp = peerIp;
    let forwardedFor = peerIp;
    if (viaTrustedProxy && headers.xForwardedFor !== undefined) {
      clientIp = rightmostUntrusted(headers.xForwardedFor, peerIp, opts.trustedProxies);
      forwardedFor = `${headers.xForwardedFor}, ${peerIp}`;
    }
    return {
      id,
      startNs,
      method,
      host,
      target,
      clientIp,
      peerIp,
      viaTrustedProxy,
      secure: opts.secure,
      authorization: headers.authorization,
      rawHeaders: req.rawHeaders,
      connection: req.socket,
      hasBody: headers.hasBody,
      upstreamHeaders: headers.forward,
      forwardedFor,
      forwardedChain: viaTrustedProxy ? trustedForwardedChain(headers.forwarded) : undefined,
      forwardedProto: (viaTrustedProxy && trustedProto(headers.xForwardedProto)) || (opts.secure ? 'https' : 'http'),
      forwardedHost: (viaTrustedProxy && trustedHost(headers.xForwardedHost)) || host.authority,
      traceId: headers.traceId,
      route: undefined,
      identity: null,
      decision: null,
      risk: undefined,
    };
  };
}

/** `GET https://host/x` is accepted only when it names the same authority as Host and our scheme. */
function absoluteForm(url: string, authority: string, secure: boolean): CanonicalTarget {
  const scheme = secure ? 'https://' : 'http://';
  if (!url.toLowerCase().startsWith(scheme)) throw new GatewayError('GW_ERR_BAD_REQUEST', 'unsupported request-target form');
  const rest = url.slice(scheme.length);
  const slash = rest.indexOf('/');
  const auth = slash < 0 ? rest : rest.slice(0, slash);
  if (auth.toLowerCase() !== authority) {
    throw new GatewayError('GW_ERR_BAD_HOST', 'absolute-form target names a different host than the Host header');
  }
  return canonicalTarget(slash < 0 ? '/' : rest.slice(slash));
}

/** Walks X-Forwarded-For right to left past our trusted proxies; the first other entry is the client. */
function rightmostUntrusted(xff: string, peerIp: string, trusted: AddressSet): string {
  const parts = xff.split(',');
  let client = peerIp;
  for (let i = parts.length - 1; i >= 0; i--) {
    const candidate = plainAddress((parts[i] as string).trim());
    // A malformed entry was not written by a proxy we trust: stop at the last hop we could verify.
    if (isIP(candidate) === 0) return client;
    client = candidate;
    if (!trusted.has(candidate)) return candidate;
  }
  return client;
}
