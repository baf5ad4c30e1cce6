// Parses the request-target ONCE into the canonical form that routing, policy and the forwarder all use.
// Anything ambiguous is refused, never "fixed" (DESIGN.md §4): the bytes we authorize are the bytes we forward.
import { GatewayError, canonicalPath, hexAt, type CanonicalTarget } from '../core/index.ts';

export { canonicalPath } from '../core/index.ts';


/** The query is not a path: forwarded as received; only control characters and bad escapes are refused. */
export function checkQuery(query: string): void {
  for (let i = 1; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) throw new GatewayError('GW_ERR_BAD_QUERY', 'control characters are not allowed in the query');
    if (c > 0x7e) throw new GatewayError('GW_ERR_BAD_QUERY', 'raw non-ASCII characters must be percent-encoded');
    if (c === 35) throw new GatewayError('GW_ERR_BAD_QUERY', 'fragments are not allowed in the request target');
    if (c === 37) {
      if (hexAt(query, i) < 0) throw new GatewayError('GW_ERR_BAD_QUERY', 'invalid percent-encoding in the query');
      i += 2;
    }
  }
}

/** Splits and canonicalizes an origin-form target (`/path?query`). */
export function canonicalTarget(originForm: string): CanonicalTarget {
  const q = originForm.indexOf('?');
  const rawPath = q < 0 ? originForm : originForm.slice(0, q);
  const query = q < 0 ? '' : originForm.slice(q);
  const { path, matchPath } = canonicalPath(rawPath);
  if (query) checkQuery(query);
  return { path, matchPath, query };
}
