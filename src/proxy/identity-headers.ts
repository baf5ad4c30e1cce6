// mutate stage: verified identity → upstream headers. Values come only from verified identity; control
// characters are refused (400), non-ASCII and '%' are percent-encoded (UTF-8), list items also encode ','.
import { type Identity, GatewayError } from '../core/index.ts';
import { ConfigError, type ConfigReport, type Config, type RouteConfig } from '../config/index.ts';
import type { GroupsView } from './groups-filter.ts';

export interface IdentityHeaderNames {
  readonly user: string;
  readonly email: string;
  readonly groups: string;
  readonly method: string;
  readonly spiffeId: string;
  readonly assertion: string;
  /** `<prefix>Groups-Truncated: true` when groups_filter cut the list at its max. */
  readonly groupsTruncated: string;
}

const CONTROL = /[\x00-\x1f\x7f]/;
const NEEDS_ENCODING = /[^\x20-\x24\x26-\x7e]/; // anything outside printable ASCII, and '%'
const NEEDS_ENCODING_IN_LIST = /[^\x20-\x24\x26-\x2b\x2d-\x7e]/; // …and ','

function percentEncode(ch: string): string {
  let out = '';
  for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

export function encodeHeaderValue(value: string, inList = false): string {
  if (CONTROL.test(value)) throw new GatewayError('GW_ERR_BAD_IDENTITY_VALUE', 'an identity value contains control characters');
  const pattern = inList ? NEEDS_ENCODING_IN_LIST : NEEDS_ENCODING;
  if (!pattern.test(value)) return value;
  let out = '';
  for (const ch of value) out += pattern.test(ch) ? percentEncode(ch) : ch;
  return out;
}

export function defaultHeaderNames(prefix: string): IdentityHeaderNames {
  return {
    user: `${prefix}User`,
    email: `${prefix}Email`,
    groups: `${prefix}Groups`,
    method: `${prefix}Auth-Method`,
    spiffeId: `${prefix}Spiffe-Id`,
    assertion: `${prefix}Assertion`,
    groupsTruncated: `${prefix}Groups-Truncated`,
  };
}

/** Headers that carry framing, routing, client address or credentials: never an identity header. */
function isReservedHeader(lower: string): boolean {
  return (
    /^(host|connection|keep-alive|te|trailer|transfer-encoding|upgrade|expect|content-length|content-type|content-encoding|authorization|cookie|set-cookie|forwarded|x-request-id|x-real-ip|via)$/.test(lower) ||
    lower.startsWith('x-forwarded-') ||
    lower.startsWith('proxy-') ||
    lower.startsWith('sec-')
  );
}

/**
 * Custom identity header names outside the prefix, lower-case: not covered by the normalize strip, so every
 * route drops every route's custom names (a client must not reach the same upstream with them through a
 * public route).
 */
export function customIdentityHeaders(config: Config): ReadonlySet<string> {
  const prefix = config.identity_headers.prefix.toLowerCase();
  const out = new Set<string>();
  for (const r of config.routes) {
    const h = r.identity_headers;
    for (const n of [h.user, h.email, h.groups, h.method, h.spiffe_id]) if (n !== undefined && !n.toLowerCase().startsWith(prefix)) out.add(n.toLowerCase());
  }
  return out;
}

/** A route's identity header names (frozen); reports reserved and reused names with `path` under identity_headers. */
export function compileIdentityHeaders(h: RouteConfig['identity_headers'], prefix: string, report: ConfigReport): IdentityHeaderNames {
  const defaults = defaultHeaderNames(prefix);
  const names: IdentityHeaderNames = Object.freeze({
    user: h.user ?? defaults.user,
    email: h.email ?? defaults.email,
    groups: h.groups ?? defaults.groups,
    method: h.method ?? defaults.method,
    spiffeId: h.spiffe_id ?? defaults.spiffeId,
    assertion: defaults.assertion,
    groupsTruncated: defaults.groupsTruncated,
  });
  const seen = new Map<string, string>();
  for (const [field, name] of Object.entries(names)) {
    const lower = name.toLowerCase();
    const key = field === 'spiffeId' ? 'spiffe_id' : field === 'groupsTruncated' ? 'groups' : field;
    if (isReservedHeader(lower)) report(new ConfigError('CFG_BAD_VALUE', [key], `"${name}" is a reserved header and cannot carry identity`));
    const other = seen.get(lower);
    if (other !== undefined) report(new ConfigError('CFG_DUPLICATE', [key], `"${name}" is already used for ${other}`));
    seen.set(lower, field);
  }
  return names;
}

/**
 * Appends identity headers to the (already stripped) upstream header list. `groups`: the route's
 * groups_filter view (absent: every group, as the identity has them).
 */
export function appendIdentityHeaders(headers: string[], id: Identity, names: IdentityHeaderNames, groups?: GroupsView): void {
  headers.push(names.user, encodeHeaderValue(id.subject), names.method, id.method);
  if (id.email !== undefined && id.emailVerified) headers.push(names.email, encodeHeaderValue(id.email));
  const list = groups?.groups ?? id.groups;
  if (list.length > 0) headers.push(names.groups, list.map((g) => encodeHeaderValue(g, true)).join(','));
  if (groups?.truncated) headers.push(names.groupsTruncated, 'true');
  if (id.spiffeId !== undefined) headers.push(names.spiffeId, encodeHeaderValue(id.spiffeId));
}
