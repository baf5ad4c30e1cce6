// The query decoded for comparisons (policy query_params, request validation); the forwarded query stays
// exactly as received. One percent-decoding, `+` as space (form encoding), UTF-8 or nothing.

export type QueryValues = ReadonlyMap<string, readonly string[]>;

function decode(s: string): string | undefined {
  const plus = s.includes('+') ? s.replaceAll('+', ' ') : s;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return undefined;
  }
}

/**
 * `a=1&a=2&b` → { a: [1, 2], b: [''] }. null when a name or value is not valid percent-encoded UTF-8: such
 * a query cannot be compared, so whatever depends on it fails.
 */
export function parseQuery(query: string): QueryValues | null {
  const out = new Map<string, string[]>();
  const text = query.startsWith('?') ? query.slice(1) : query;
  if (text === '') return out;
  for (const piece of text.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = decode(eq < 0 ? piece : piece.slice(0, eq));
    const value = decode(eq < 0 ? '' : piece.slice(eq + 1));
    if (name === undefined || value === undefined) return null;
    const list = out.get(name);
    if (list) list.push(value);
    else out.set(name, [value]);
  }
  return out;
}
