// mutate stage: verified identity → upstream headers. Values come only from verified identity; control
// characters are refused (400), non-ASCII and '%' are percent-encoded (UTF-8), list items also encode ','.
import { type Identity, GatewayError } from '../core/index.ts';

export interface IdentityHeaderNames {
  readonly user: string;
  readonly email: string;
  readonly groups: string;
  readonly method: string;
  readonly spiffeId: string;
  readonly assertion: string;
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
  };
}

/** Appends identity headers to the (already stripped) upstream header list. */
export function appendIdentityHeaders(headers: string[], id: Identity, names: IdentityHeaderNames): void {
  headers.push(names.user, encodeHeaderValue(id.subject), names.method, id.method);
  if (id.email !== undefined && id.emailVerified) headers.push(names.email, encodeHeaderValue(id.email));
  if (id.groups.length > 0) headers.push(names.groups, id.groups.map((g) => encodeHeaderValue(g, true)).join(','));
  if (id.spiffeId !== undefined) headers.push(names.spiffeId, encodeHeaderValue(id.spiffeId));
}
