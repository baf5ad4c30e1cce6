// What an upstream may not tell the client: hop-by-hop framing and banners that leak its software.
import type { IncomingHttpHeaders } from 'node:http';

const DROPPED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version',
]);

/** Flattens upstream headers into [name, value, …] for writeHead, dropping hop-by-hop and leaks. */
export function responseHeaders(headers: IncomingHttpHeaders, requestId: string): string[] {
  const listed = headers.connection;
  const connectionTokens =
    typeof listed === 'string' ? new Set(listed.split(',').map((t) => t.trim().toLowerCase())) : null;
  const out: string[] = [];
  for (const name in headers) {
    if (DROPPED.has(name) || name === 'x-request-id') continue;
    if (connectionTokens !== null && connectionTokens.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  out.push('x-request-id', requestId);
  return out;
}
