// Per-route request_headers / response_headers { set, remove }: checked and compiled at load. Names the
// gateway owns (identity, forwarding, tracing, credentials, framing, hop-by-hop) cannot be touched, and the
// response side cannot remove or replace the gateway's security headers.
import { ConfigError } from '../config/index.ts';

export interface HeaderMutation {
  /** Lower-case names removed (set names included: a set replaces). */
  readonly remove: ReadonlySet<string>;
  /** Flat [name, value, …], lower-case names. */
  readonly set: readonly string[];
}

type MutationConfig = { set?: Record<string, string> | undefined; remove?: string[] | undefined } | undefined;

const OWNED = new Set([
  'host', 'authorization', 'proxy-authorization', 'cookie', 'forwarded', 'x-request-id', 'traceparent', 'tracestate',
  'x-real-ip', 'via',
  // framing and hop-by-hop
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade',
  'expect', 'proxy-authenticate',
]);
const OWNED_FAMILIES = ['x-forwarded-', 'sec-websocket-', ':'];

/** Security headers the gateway sets (any route may set them): never removed or replaced by response_headers. */
const SECURITY = new Set([
  'strict-transport-security', 'content-security-policy', 'content-security-policy-report-only', 'x-frame-options',
  'x-content-type-options', 'referrer-policy', 'permissions-policy', 'cross-origin-opener-policy',
  'cross-origin-resource-policy', 'cross-origin-embedder-policy', 'x-permitted-cross-domain-policies',
  'x-dns-prefetch-control', 'x-download-options', 'x-xss-protection', 'origin-agent-cluster',
]);

export interface HeaderRuleContext {
  /** identity_headers.prefix, lower-case. */
  readonly identityPrefix: string;
  /** Custom identity header names (lower-case) of every route. */
  readonly customNames: ReadonlySet<string>;
  /** The route's security header names. */
  readonly securityNames: ReadonlySet<string>;
}

function owned(name: string, ctx: HeaderRuleContext): string | undefined {
  if (OWNED.has(name) || OWNED_FAMILIES.some((f) => name.startsWith(f))) return `${name} is set by the gateway`;
  if (name.startsWith(ctx.identityPrefix) || ctx.customNames.has(name)) return `${name} is an identity header`;
  return undefined;
}

/** Throws ConfigError (path relative to the route) for a name the route may not touch. */
export function compileHeaderMutation(cfg: MutationConfig, side: 'request_headers' | 'response_headers', ctx: HeaderRuleContext): HeaderMutation | null {
  if (cfg === undefined || (cfg.set === undefined && cfg.remove === undefined)) return null;
  const check = (name: string, at: (string | number)[]): string => {
    const lower = name.toLowerCase();
    const problem =
      owned(lower, ctx) ??
      (side === 'response_headers' && (SECURITY.has(lower) || ctx.securityNames.has(lower)) ? `${lower} is a security header the gateway sets` : undefined) ??
      (side === 'response_headers' && lower.startsWith('access-control-') ? `${lower}: CORS answers come from the route's cors block` : undefined);
    if (problem !== undefined) throw new ConfigError('CFG_BAD_VALUE', [side, ...at], problem);
    return lower;
  };
  const remove = new Set<string>();
  const set: string[] = [];
  (cfg.remove ?? []).forEach((n, i) => remove.add(check(n, ['remove', i])));
  for (const [n, v] of Object.entries(cfg.set ?? {})) {
    const lower = check(n, ['set', n]);
    remove.add(lower);
    set.push(lower, v);
  }
  return Object.freeze({ remove, set: Object.freeze(set) });
}

/** Applies a request mutation to the flat header list sent upstream, in place. */
export function mutateRequestHeaders(headers: string[], m: HeaderMutation): void {
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    if (m.remove.has((headers[r] as string).toLowerCase())) continue;
    headers[w++] = headers[r] as string;
    headers[w++] = headers[r + 1] as string;
  }
  headers.length = w;
  for (const v of m.set) headers.push(v);
}
