// Route path templates: `/tenants/{tenant}/invoices/{id}`. A named segment matches exactly one non-empty
// segment of the canonical match path. Parsed at load; matching walks the path once, no regex per request.

export type TemplateSegment = { readonly literal: string } | { readonly param: string };

export interface PathTemplate {
  readonly segments: readonly TemplateSegment[];
  /** The literal part before the first named segment, without trailing slash ('' for /): the router's key. */
  readonly literalPrefix: string;
  readonly names: readonly string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** undefined when the path names no segments; throws TypeError on `a{b}`, `{}`, bad or repeated names. */
export function parseTemplate(path: string): PathTemplate | undefined {
  if (!path.includes('{') && !path.includes('}')) return undefined;
  const parts = path.split('/').slice(1);
  const segments: TemplateSegment[] = [];
  const names: string[] = [];
  let literalPrefix: string | undefined;
  let prefix = '';
  for (const part of parts) {
    if (part.startsWith('{') && part.endsWith('}')) {
      const name = part.slice(1, -1);
      if (!NAME.test(name)) throw new TypeError(`"{${name}}" is not a segment name (letters, digits, _)`);
      if (names.includes(name)) throw new TypeError(`segment name "${name}" is used twice`);
      names.push(name);
      segments.push({ param: name });
      literalPrefix ??= prefix;
      continue;
    }
    if (part.includes('{') || part.includes('}')) throw new TypeError(`a named segment must be a whole segment ("${part}")`);
    segments.push({ literal: part });
    if (literalPrefix === undefined) prefix += `/${part}`;
  }
  // A trailing slash after the last segment is an empty literal: drop it (prefix routes ignore it).
  const last = segments[segments.length - 1];
  if (last !== undefined && 'literal' in last && last.literal === '') segments.pop();
  return { segments, literalPrefix: literalPrefix ?? prefix, names };
}

/**
 * Matches `matchPath` against the template; `exact`: no segments after the template's (a trailing slash
 * is allowed on a prefix match, like `/api/` under `/api`). Calls `bind(name, rawSegment)` for each named
 * segment; the raw segment keeps normalize's percent-encoding.
 */
export function matchTemplate(t: PathTemplate, matchPath: string, exact: boolean, bind?: (name: string, raw: string) => void): boolean {
  let pos = 1; // after the leading '/'
  const n = matchPath.length;
  const segs = t.segments;
  for (let s = 0; s < segs.length; s++) {
    if (pos > n) return false;
    let end = matchPath.indexOf('/', pos);
    if (end < 0) end = n;
    const seg = segs[s] as TemplateSegment;
    if ('param' in seg) {
      if (end === pos) return false;
      bind?.(seg.param, matchPath.slice(pos, end));
    } else if (end - pos !== seg.literal.length || !matchPath.startsWith(seg.literal, pos)) return false;
    pos = end + 1;
  }
  if (pos > n) return true;
  return exact ? false : true;
}

/** The single percent-decoding of a segment value (normalize already checked escapes and UTF-8). */
export function decodeSegment(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * Named values of a canonical path, decoded once; {} when the route has no template or the path does not
 * match (e.g. a literal segment that carries ;params).
 */
export function extractParams(t: PathTemplate | null, path: string, exact: boolean): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (t === null) return out;
  const raw: Array<[string, string]> = [];
  if (!matchTemplate(t, path, exact, (name, value) => raw.push([name, value]))) return out;
  for (const [name, value] of raw) {
    const decoded = decodeSegment(value);
    if (decoded !== undefined) out[name] = decoded;
  }
  return out;
}
