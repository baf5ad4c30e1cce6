// Route path templates: `/tenants/{tenant}/invoices/{id}`. A named segment matches exactly one non-empty
// segment of the canonical match path. Parsed at load (core/path-template.ts); matching walks the path
// once, no regex per request.
import type { PathTemplate, TemplateSegment } from '../core/index.ts';

export { parseTemplate, type PathTemplate, type TemplateSegment } from '../core/index.ts';

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
