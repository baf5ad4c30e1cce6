// `login.host`: one auth host for the fleet, compiled once at load. Which hosts are the gateway's own (a
// route's exact or wildcard host, or a listen.public_urls host: never "any host"), the auth host's origin as
// the client sees it, and where a login may return: a path, or an absolute URL on one of the gateway's own
// hosts with the same scheme (and that host's public URL, or this listener's port); anything else is '/'.
import type { Config } from '../../config/index.ts';
import { ConfigError } from '../../config/index.ts';
import type { RequestContext } from '../../core/index.ts';
import type { PublicOrigins } from '../../normalize/index.ts';
import { safeReturnTo } from './return-to.ts';

export interface FleetLogin {
  /** The auth host's name (lower case, no port). */
  readonly host: string;
  readonly logout: 'fleet' | 'host';
  /** Whether the request is on the auth host. */
  isAuthHost(ctx: RequestContext): boolean;
  /** The auth host's origin, as clients reach it from this request. */
  authOrigin(ctx: RequestContext): string;
  /**
   * The origin `value` (`https://app.example.com[:port]`) names when it is one of the gateway's own hosts,
   * with this request's scheme; undefined otherwise.
   */
  ownOrigin(ctx: RequestContext, value: string): string | undefined;
  /** A return_to: a safe path on this origin, or a path on another of the gateway's own origins. */
  returnTo(ctx: RequestContext, value: string | null | undefined): { origin: string; path: string };
}

/** `https://host[:port]` with an optional path and query: nothing a browser could read otherwise. */
const ABSOLUTE = /^(https?):\/\/([a-z0-9.-]+)(:\d{1,5})?(\/[\x21-\x7e]*)?$/i;
const ORIGIN_SPLIT = /^(https?):\/\/([^:/]+)(:\d+)?$/;

/** The port part (`:8443` or '') of the request's authority as the client used it. */
function portOf(authority: string): string {
  const bracket = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  return colon > bracket ? authority.slice(colon) : '';
}

function withoutDefaultPort(scheme: string, port: string): string {
  return (scheme === 'https' && port === ':443') || (scheme === 'http' && port === ':80') ? '' : port;
}

/** Null without `login`; throws a ConfigError when the auth host is not one of the gateway's own. */
export function compileFleetLogin(config: Config, publicOrigins: PublicOrigins, publicUrls: readonly string[] = []): FleetLogin | null {
  const cfg = config.login;
  if (cfg === undefined) return null;
  const exact = new Set<string>();
  const suffixes = new Set<string>();
  for (const r of config.routes) {
    const hosts = r.match.host === undefined ? [] : Array.isArray(r.match.host) ? r.match.host : [r.match.host];
    for (const h of hosts) {
      const lower = h.toLowerCase().replace(/\.$/, '');
      if (lower.startsWith('*.')) suffixes.add(lower.slice(1));
      else exact.add(lower);
    }
  }
  /** host → its public URL origin. */
  const listed = new Map<string, string>();
  for (const url of publicUrls) {
    const m = ORIGIN_SPLIT.exec(url.toLowerCase().replace(/\/$/, ''));
    if (m) listed.set(m[2] as string, `${m[1]}://${m[2]}${withoutDefaultPort(m[1] as string, m[3] ?? '')}`);
  }
  const owns = (host: string): boolean => {
    if (exact.has(host) || listed.has(host)) return true;
    for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) if (suffixes.has(host.slice(dot))) return true;
    return false;
  };
  const [hostPart, portPart] = cfg.host.toLowerCase().split(':') as [string, string | undefined];
  if (!owns(hostPart)) {
    throw new ConfigError('CFG_BAD_VALUE', ['login', 'host'], `${hostPart} is not one of the gateway's own hosts (a route's match.host or a listen.public_urls host)`);
  }
  const fixedPort = portPart === undefined ? undefined : `:${portPart}`;
  const scheme = (ctx: RequestContext): string => {
    const own = publicOrigins.originOf(ctx);
    return own.slice(0, own.indexOf(':'));
  };
  /** The origin of one of our hosts as seen from this request: its public URL, else this scheme and port. */
  const originFor = (ctx: RequestContext, host: string, port?: string): string => {
    const known = listed.get(host);
    if (known !== undefined) return known;
    const s = scheme(ctx);
    return `${s}://${host}${withoutDefaultPort(s, port ?? portOf(ctx.forwardedHost))}`;
  };
  const ownOrigin = (ctx: RequestContext, value: string): string | undefined => {
    const m = ABSOLUTE.exec(value);
    if (m === null || m[4] !== undefined) return undefined;
    const [, s, host, port] = m as unknown as [string, string, string, string | undefined];
    const origin = `${s.toLowerCase()}://${host.toLowerCase()}${withoutDefaultPort(s.toLowerCase(), port ?? '')}`;
    if (s.toLowerCase() !== scheme(ctx) || !owns(host.toLowerCase())) return undefined;
    return origin === originFor(ctx, host.toLowerCase()) ? origin : undefined;
  };
  return Object.freeze({
    host: hostPart,
    logout: cfg.logout,
    isAuthHost: (ctx: RequestContext) => ctx.host.name === hostPart,
    authOrigin: (ctx: RequestContext) => (fixedPort !== undefined && !listed.has(hostPart) ? `${scheme(ctx)}://${hostPart}${withoutDefaultPort(scheme(ctx), fixedPort)}` : originFor(ctx, hostPart)),
    ownOrigin,
    returnTo(ctx: RequestContext, value: string | null | undefined) {
      const here = publicOrigins.originOf(ctx);
      if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return { origin: here, path: '/' };
      if (value.startsWith('/')) return { origin: here, path: safeReturnTo(value) };
      const m = ABSOLUTE.exec(value);
      if (m === null) return { origin: here, path: '/' };
      const origin = ownOrigin(ctx, `${m[1]}://${m[2]}${m[3] ?? ''}`);
      if (origin === undefined) return { origin: here, path: '/' };
      return { origin, path: safeReturnTo(m[4] ?? '/') };
    },
  });
}
