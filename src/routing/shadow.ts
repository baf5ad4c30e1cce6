// `validate` warns when an earlier route catches everything a later one would: the later one is dead config.
import type { HostMatcher, RoutableRoute } from './route.ts';

function hostCovered(a: HostMatcher | null, b: HostMatcher | null): boolean {
  if (a === null) return true;
  if (b === null) return false;
  const coveredByWildcard = (name: string) => a.wildcard.some((s) => name.endsWith(s) && name.length > s.length);
  return (
    b.exact.every((h) => a.exact.includes(h) || coveredByWildcard(h)) &&
    b.wildcard.every((s) => a.wildcard.some((as) => s === as || s.endsWith(as)))
  );
}

/** Segments of a route path; a named segment is null (it stands for any one segment). */
function segmentsOf(r: RoutableRoute): Array<string | null> {
  if (r.template) return r.template.segments.map((s) => ('param' in s ? null : s.literal));
  return r.path === '' ? [] : r.path.split('/').slice(1);
}

/** With named segments: a covers b when a's segments are a prefix of b's (all of them, for exact a). */
function templateCovered(a: RoutableRoute, b: RoutableRoute): boolean {
  const as = segmentsOf(a);
  const bs = segmentsOf(b);
  if (a.exact && (!b.exact || as.length !== bs.length)) return false;
  if (as.length > bs.length) return false;
  return as.every((seg, i) => seg === null ? bs[i] !== '' : seg === bs[i]);
}

function pathCovered(a: RoutableRoute, b: RoutableRoute): boolean {
  if (a.template || b.template) return templateCovered(a, b);
  if (a.exact) return b.exact && a.path === b.path;
  if (a.path === '') return true;
  const p = b.path;
  return p === a.path || p.startsWith(`${a.path}/`);
}

function methodsCovered(a: ReadonlySet<string> | null, b: ReadonlySet<string> | null): boolean {
  if (a === null) return true;
  if (b === null) return false;
  for (const m of b) if (!a.has(m)) return false;
  return true;
}

/** For each shadowed route, the earlier route that shadows it. */
export function findShadowed<R extends RoutableRoute>(routes: readonly R[]): Array<{ route: R; by: R }> {
  const out: Array<{ route: R; by: R }> = [];
  for (let j = 1; j < routes.length; j++) {
    const b = routes[j] as R;
    for (let i = 0; i < j; i++) {
      const a = routes[i] as R;
      if (hostCovered(a.hosts, b.hosts) && pathCovered(a, b) && methodsCovered(a.methods, b.methods)) {
        out.push({ route: b, by: a });
        break;
      }
    }
  }
  return out;
}
