// Reading one claim out of a token's (or session's) claims, the way a config names it: a string is the
// top-level claim of exactly that name when the claims have one (Auth0-style `https://example.com/groups`),
// else a dotted path (`realm_access.roles`); `{ path: [...] }` is a path whose segments may hold dots
// (`resource_access` → `my.client` → `roles`). Own properties only: never a prototype's.

export type ClaimSource = string | { readonly path: readonly string[] };
export type ClaimReader = (claims: Readonly<Record<string, unknown>>) => unknown;

/** Path segments a config may never name (refused at load; own-property reads make them harmless anyway). */
export const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

function own(v: unknown, key: string): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  return Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
}

function pathReader(path: readonly string[]): ClaimReader {
  const segs = [...path];
  if (segs.length === 1) {
    const key = segs[0] as string;
    return (c) => own(c, key);
  }
  return (c) => {
    let v: unknown = c;
    for (const key of segs) {
      v = own(v, key);
      if (v === undefined) return undefined;
    }
    return v;
  };
}

/** The segments a source names (for a string: its dotted reading), to check them at load. */
export function sourceSegments(source: ClaimSource): readonly string[] {
  return typeof source === 'string' ? source.split('.') : source.path;
}

/** The top-level claim names a source may read (a dotted string may be read whole, or by its first segment). */
export function sourceTopLevel(source: ClaimSource): readonly string[] {
  if (typeof source !== 'string') return [source.path[0] as string];
  const first = source.split('.', 1)[0] as string;
  return first === source ? [source] : [source, first];
}

/** Compiles a source into an accessor once (the request path only walks own properties). */
export function claimReader(source: ClaimSource): ClaimReader {
  if (typeof source !== 'string') return pathReader(source.path);
  if (!source.includes('.')) return pathReader([source]);
  const whole = source;
  const dotted = pathReader(source.split('.'));
  return (c) => (Object.hasOwn(c, whole) ? c[whole] : dotted(c));
}

/**
 * Entra ID group overage (OIDC Core 5.6.2 distributed claims): the token names a claim source for `groups`
 * instead of carrying them. The groups are then unknown: never "no groups".
 */
export function hasGroupsOverage(claims: Readonly<Record<string, unknown>>): boolean {
  return own(own(claims, '_claim_names'), 'groups') !== undefined;
}
