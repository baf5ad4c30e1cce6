// A request's own origin as the client sees it (scheme, host, port), for login redirect URIs and cross-site
// checks: from listen.public_urls when the host is listed there, else from a trusted proxy's
// X-Forwarded-Proto/-Host (ctx.forwardedProto/forwardedHost), else from the connection and Host.
// Origins are compared as strings in one serialization: lower-case, default port dropped.
import { ConfigError } from '../config/index.ts';
import type { RequestContext } from '../core/index.ts';
import { canonicalHost } from './host.ts';

const ORIGIN = /^(https?):\/\/([^/?#@\s]+)$/;
/** Mismatches remembered per compiled config, so a busy gateway logs each pair once and memory stays bounded. */
const MAX_REPORTED = 64;

/**
 * `scheme://host[:port]` lower-cased without the scheme's default port, or undefined when the value is not
 * an http(s) origin (`null`, a path, userinfo, a bad host). The same form for headers and configured values.
 */
export function normalizeOrigin(value: string): string | undefined {
  const m = ORIGIN.exec(value.toLowerCase());
  if (m === null) return undefined;
  const scheme = m[1] as string;
  let authority: string;
  try {
    authority = canonicalHost(m[2]).authority;
  } catch {
    return undefined;
  }
  return `${scheme}://${withoutDefaultPort(scheme, authority)}`;
}

function withoutDefaultPort(scheme: string, authority: string): string {
  const port = scheme === 'https' ? ':443' : ':80';
  return authority.endsWith(port) ? authority.slice(0, -port.length) : authority;
}

/** The host name of an authority (`[::1]:8443` → `::1`, `a.example:8443` → `a.example`). */
function hostName(authority: string): string {
  if (authority.charCodeAt(0) === 91 /* [ */) return authority.slice(1, authority.indexOf(']'));
  const colon = authority.indexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

export interface PublicOrigins {
  /** listen.public_urls is set: only its hosts may start a login. */
  readonly configured: boolean;
  /** The public URL's origin for the request's host, or undefined when it has none. */
  listed(ctx: RequestContext): string | undefined;
  /** The request's own origin: its public URL, else the (trusted) forwarded scheme and host. */
  originOf(ctx: RequestContext): string;
}

export type MismatchReport = (detail: { public_url: string; host: string }) => void;

/** listen.public_urls compiled into host → origin; throws a ConfigError (path relative to the list). */
export function compilePublicOrigins(urls: readonly string[] | undefined, onMismatch: MismatchReport = () => undefined): PublicOrigins {
  const byHost = new Map<string, { origin: string; authority: string }>();
  (urls ?? []).forEach((url, i) => {
    const origin = normalizeOrigin(url.endsWith('/') ? url.slice(0, -1) : url);
    if (origin === undefined) throw new ConfigError('CFG_BAD_VALUE', [i], `"${url}" is not an http(s) URL with a valid host`);
    const authority = origin.slice(origin.indexOf('://') + 3);
    const host = hostName(authority);
    if (byHost.has(host)) throw new ConfigError('CFG_DUPLICATE', [i], `a second public URL for host ${host}`);
    byHost.set(host, { origin, authority });
  });
  const reported = new Set<string>();
  const lookup = (ctx: RequestContext) => byHost.get(hostName(ctx.forwardedHost)) ?? byHost.get(ctx.host.name);
  const listed = (ctx: RequestContext): string | undefined => {
    if (byHost.size === 0) return undefined;
    const found = lookup(ctx);
    if (found === undefined) return undefined;
    const scheme = found.origin.slice(0, found.origin.indexOf(':'));
    const seen = withoutDefaultPort(scheme, ctx.forwardedHost);
    if (seen !== found.authority && reported.size < MAX_REPORTED && !reported.has(`${found.origin} ${seen}`)) {
      // A proxy that rewrites Host, or a URL that names another port: the operator should know, once.
      reported.add(`${found.origin} ${seen}`);
      onMismatch({ public_url: found.origin, host: ctx.forwardedHost });
    }
    return found.origin;
  };
  return Object.freeze({
    configured: byHost.size > 0,
    listed,
    originOf: (ctx: RequestContext) => listed(ctx) ?? `${ctx.forwardedProto}://${withoutDefaultPort(ctx.forwardedProto, ctx.forwardedHost)}`,
  });
}
