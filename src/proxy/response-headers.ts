// What an upstream may not tell the client (hop-by-hop framing, banners that leak its software), merged
// with the route's security headers and CORS answer. The security list is precomputed per route.
import type { IncomingHttpHeaders } from 'node:http';
import type { SecurityHeaderSet } from '../response/index.ts';
import type { HeaderMutation } from './header-rules.ts';
import { unrewritePath, type PrefixRewrite } from './upstream.ts';

export const DROPPED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version', 'x-request-id',
]);

export interface ResponsePlan {
  readonly security: SecurityHeaderSet;
  /** null: the route has no CORS config (the upstream's own CORS headers pass). */
  readonly cors: readonly string[] | null;
  /** Set-Cookie values from the gateway itself (session refresh). */
  readonly cookies?: readonly string[];
  /** Sees the response body as it is relayed (CSP learn); never holds or changes what the client gets. */
  readonly tap?: BodyTap | undefined;
  /** The route's response_headers and prefix rewrite (Location and Set-Cookie Path mapped back). */
  readonly edit?: ResponseEdit | undefined;
  /** The gateway's own cookie names: an upstream's Set-Cookie for one is dropped (no planted session). */
  readonly ownCookie?: ((name: string) => boolean) | undefined;
}

/** The cookie name a Set-Cookie line sets (before `=`, trimmed). */
function setCookieName(line: string): string {
  const eq = line.indexOf('=');
  return (eq === -1 ? line : line.slice(0, eq)).trim();
}

/** Told each response's head; returns a sink for its body, or null to skip it. */
export interface BodyTap {
  start(status: number, headers: IncomingHttpHeaders): { data(chunk: Buffer): void; end(): void } | null;
}

export interface ResponseEdit {
  readonly mutation: HeaderMutation | null;
  readonly rewrite: PrefixRewrite | null;
  /** The endpoints' origins: an absolute Location on one of them is mapped back too (made relative). */
  readonly origins: ReadonlySet<string>;
}

/** nginx's proxy_redirect default: a Location into the rewritten space points back into the client's. */
function mapLocation(value: string, edit: ResponseEdit, rewrite: PrefixRewrite): string {
  let rest = value;
  if (!value.startsWith('/')) {
    const m = /^https?:\/\/[^/?#]+/i.exec(value);
    if (m === null || !edit.origins.has(m[0].toLowerCase())) return value;
    rest = value.slice(m[0].length) || '/';
  } else if (value.startsWith('//')) return value;
  const cut = rest.search(/[?#]/);
  const path = cut === -1 ? rest : rest.slice(0, cut);
  const back = unrewritePath(rewrite, path);
  if (back === undefined) return value;
  return back + (cut === -1 ? '' : rest.slice(cut));
}

function mapCookiePath(value: string, rewrite: PrefixRewrite): string {
  return value.replace(/(;\s*path=)([^;]*)/i, (whole, attr: string, path: string) => {
    const back = unrewritePath(rewrite, path.trim());
    // Path=/ under a stripped /app covers /app itself: /app, not /app/.
    return back === undefined ? whole : attr + (back.length > 1 && back.endsWith('/') ? back.slice(0, -1) : back);
  });
}

function edited(name: string, value: string, edit: ResponseEdit | undefined): string {
  const rewrite = edit?.rewrite;
  if (rewrite === null || rewrite === undefined || edit === undefined) return value;
  if (name === 'location') return mapLocation(value, edit, rewrite);
  if (name === 'set-cookie') return mapCookiePath(value, rewrite);
  return value;
}

/**
 * For a WebSocket handshake answer (101, or the upstream's refusal) relayed by http-proxy-3: drops the same
 * banners and framing, except the Connection/Upgrade pair a 101 needs, and sets the gateway's request id.
 */
export function scrubUpgradeResponseHeaders(
  headers: IncomingHttpHeaders,
  requestId: string,
  switching: boolean,
  ownCookie?: ((name: string) => boolean) | undefined,
): void {
  for (const name of Object.keys(headers)) {
    if (switching && (name === 'connection' || name === 'upgrade')) continue;
    if (DROPPED.has(name)) delete headers[name];
  }
  const cookies = headers['set-cookie'];
  if (ownCookie !== undefined && cookies !== undefined) {
    // As for any answer: the app cannot plant or clear the gateway's session or login cookies.
    const kept = cookies.filter((l) => !ownCookie(setCookieName(l)));
    if (kept.length === 0) delete headers['set-cookie'];
    else headers['set-cookie'] = kept;
  }
  headers['x-request-id'] = requestId;
}

/** Flattens upstream headers into [name, value, …] for writeHead. */
export function responseHeaders(headers: IncomingHttpHeaders, requestId: string, plan: ResponsePlan): string[] {
  const listed = headers.connection;
  // Several Connection lines arrive as an array: every one of them lists hop-by-hop headers.
  const connectionTokens =
    listed === undefined
      ? null
      : new Set((Array.isArray(listed) ? listed.join(',') : listed).split(',').map((t) => t.trim().toLowerCase()));
  const { security } = plan;
  const out: string[] = [];
  let kept: Set<string> | null = null;
  for (const name in headers) {
    if (DROPPED.has(name)) continue;
    if (connectionTokens !== null && connectionTokens.has(name)) continue;
    if (security.names.has(name)) {
      if (!security.keepUpstream.has(name)) continue;
      (kept ??= new Set()).add(name);
    }
    if (plan.cors !== null && name.startsWith('access-control-')) continue;
    let value = headers[name];
    if (value === undefined) continue;
    const own = plan.ownCookie;
    if (own !== undefined && name === 'set-cookie') {
      // An app (compromised or buggy) must not plant or clear the gateway's session or login cookies.
      const lines = (typeof value === 'string' ? [value] : value).filter((l) => !own(setCookieName(l)));
      if (lines.length === 0) continue;
      value = lines;
    }
    const edit = plan.edit;
    if (edit !== undefined) {
      if (edit.mutation?.remove.has(name)) continue;
      if (typeof value === 'string') out.push(name, edited(name, value, edit));
      else for (const v of value) out.push(name, edited(name, v, edit));
      continue;
    }
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  const set = plan.edit?.mutation?.set;
  if (set !== undefined) for (const v of set) out.push(v);
  const flat = security.flat;
  for (let i = 0; i < flat.length; i += 2) {
    if (kept !== null && kept.has(flat[i] as string)) continue;
    out.push(flat[i] as string, flat[i + 1] as string);
  }
  if (plan.cors !== null) for (const v of plan.cors) out.push(v);
  if (plan.cookies) for (const c of plan.cookies) out.push('set-cookie', c);
  out.push('x-request-id', requestId);
  return out;
}
