// Route path templates (`/tenants/{tenant}/invoices/{id}`) as config writes them: parsed at load by the
// config schema (to report a bad template with the other errors) and by the routing step.

export type TemplateSegment = { readonly literal: string } | { readonly param: string };

export interface PathTemplate {
  readonly segments: readonly TemplateSegment[];
  /** The literal part before the first named segment, without trailing slash ('' for /): the router's key. */
  readonly literalPrefix: string;
  readonly names: readonly string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Frozen; undefined when the path names no segments; throws TypeError on `a{b}`, `{}`, bad or repeated names. */
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
  return Object.freeze({ segments: Object.freeze(segments.map((s) => Object.freeze(s))), literalPrefix: literalPrefix ?? prefix, names: Object.freeze(names) });
}
