// A request's server-span attributes at its start (OpenTelemetry HTTP semantic conventions). Never the query
// string, a header holding a credential, a cookie or the subject: only what the access log already shows.
import { headerOf, type RequestContext } from '../core/index.ts';

/** The port of a Host authority (`name:port`, `[v6]:port`), else the scheme's default. */
function portOf(authority: string, scheme: string): number {
  const colon = authority.lastIndexOf(':');
  if (colon > authority.lastIndexOf(']')) {
    const port = Number(authority.slice(colon + 1));
    if (Number.isInteger(port) && port > 0) return port;
  }
  return scheme === 'https' ? 443 : 80;
}

export function serverAttributes(ctx: RequestContext, httpVersion: string): Record<string, string | number> {
  const scheme = ctx.forwardedProto;
  const attributes: Record<string, string | number> = {
    'http.request.method': ctx.method,
    'url.path': ctx.target.path,
    'url.scheme': scheme,
    'server.address': ctx.host.name,
    'server.port': portOf(ctx.host.authority, scheme),
    'client.address': ctx.clientIp,
    'network.peer.address': ctx.peerIp,
    'network.protocol.version': httpVersion,
  };
  const agent = headerOf(ctx, 'user-agent');
  if (agent !== undefined) attributes['user_agent.original'] = agent;
  return attributes;
}

