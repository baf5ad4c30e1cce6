// RFC 7239 Forwarded and X-Forwarded-Proto/-Host from a trusted proxy: believed only when well-formed,
// so a proxy's garbage (or a client that slipped past it) never reaches the upstream as the gateway's word.
import { isIPv6 } from 'node:net';
import { canonicalHost } from './host.ts';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// forwarded-element: pair *( ";" pair ), pair = token "=" ( token / quoted-string ); elements comma-separated.
const PAIR = String.raw`[!#$%&'*+.^_\x60|~0-9A-Za-z-]+=(?:[!#$%&'*+.^_\x60|~0-9A-Za-z-]+|"(?:[^"\\\x00-\x1f\x7f]|\\[\x20-\x7e])*")`;
const ELEMENT = String.raw`[ \t]*${PAIR}(?:[ \t]*;[ \t]*${PAIR})*[ \t]*`;
const FORWARDED = new RegExp(String.raw`^${ELEMENT}(?:,${ELEMENT})*$`);
const MAX_FORWARDED = 2048;

/** The incoming Forwarded chain when it is syntactically valid RFC 7239, else undefined (dropped). */
export function trustedForwardedChain(value: string | undefined): string | undefined {
  if (value === undefined || value.length > MAX_FORWARDED || !FORWARDED.test(value)) return undefined;
  return value.trim();
}

/** X-Forwarded-Proto from a trusted proxy: exactly `http` or `https` (any case), else undefined. */
export function trustedProto(value: string | undefined): 'http' | 'https' | undefined {
  const v = value?.trim().toLowerCase();
  return v === 'http' || v === 'https' ? v : undefined;
}

/** X-Forwarded-Host from a trusted proxy: one valid host[:port] (canonical form), else undefined. */
export function trustedHost(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return canonicalHost(value.trim()).authority;
  } catch {
    return undefined;
  }
}

function quoteIfNeeded(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** The gateway's own element: what it saw on the connection (peer, scheme, Host). IPv6 as `"[::1]"`. */
export function forwardedElement(peerIp: string, proto: string, host: string): string {
  // A ':' can only be IPv6 here (socket addresses never carry a port): no full address parse per request.
  const node = peerIp.includes(':') && isIPv6(peerIp) ? `"[${peerIp}]"` : quoteIfNeeded(peerIp || 'unknown');
  return `for=${node};proto=${proto};host=${quoteIfNeeded(host)}`;
}
