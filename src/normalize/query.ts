// The query decoded for comparisons (policy query_params, request validation); the forwarded query stays
// exactly as received. One percent-decoding, `+` as space (form encoding), UTF-8 or nothing.
import { foldText } from './case-fold.ts';

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

const SEPARATORS = /[&;]/;
const TRAILING_DOTS_AND_SPACE = /[.\s]+$/u;
const DOTS_AND_SPACE = /[.\s]/gu;

/**
 * The keys under which frameworks may file a (once-decoded) parameter name, for comparisons that must see
 * every spelling: case folded (ASP.NET reads `TENANT` as `tenant`), whitespace trimmed and a trailing `.`
 * dropped (trimming parsers, Windows-minded ones), a `[...]` suffix removed (PHP and Rails arrays:
 * `tenant[]`, `tenant[0][x]`), cut at a NUL (C string handling), and PHP's renaming of `.` and spaces inside
 * a name to `_` (`tenant.id` is `tenant_id` in `$_GET`), also of a `[` without a closing `]`.
 */
export function paramKeys(decoded: string): string[] {
  const nul = decoded.indexOf('\0');
  const name = nul < 0 ? decoded : decoded.slice(0, nul);
  const bracket = name.indexOf('[');
  const key = (n: string): string => foldText(n.trim().replace(TRAILING_DOTS_AND_SPACE, '').replace(DOTS_AND_SPACE, '_'));
  const cut = key(bracket < 0 ? name : name.slice(0, bracket));
  if (bracket < 0 || name.includes(']', bracket)) return [cut];
  const php = key(`${name.slice(0, bracket)}_${name.slice(bracket + 1)}`);
  return php === cut ? [cut] : [cut, php];
}

/**
 * The query as the most lenient backend reads it, for policy `query_params`: split on `&` AND `;` (Rack 2,
 * Go before 1.17, Python before 3.9.2, Perl CGI), names decoded once and filed under every paramKeys key.
 * null when a name or value is not valid percent-encoded UTF-8.
 */
export function parseQuerySpellings(query: string): QueryValues | null {
  const out = new Map<string, string[]>();
  const text = query.startsWith('?') ? query.slice(1) : query;
  if (text === '') return out;
  for (const piece of text.split(SEPARATORS)) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = decode(eq < 0 ? piece : piece.slice(0, eq));
    const value = decode(eq < 0 ? '' : piece.slice(eq + 1));
    if (name === undefined || value === undefined) return null;
    for (const key of paramKeys(name)) {
      const list = out.get(key);
      if (list) list.push(value);
      else out.set(key, [value]);
    }
  }
  return out;
}
