// Which host names some route names: a login may start only on such a host (a login on any other Host would
// build a callback URL for a name the operator never configured). Compiled once from the routes.
import type { RoutableRoute } from './route.ts';

/** host name → whether a route applies to it (a route without `match.host` names every host). */
export function compileNamedHosts(routes: readonly RoutableRoute[]): (host: string) => boolean {
  if (routes.some((r) => r.hosts === null)) return () => true;
  const exact = new Set<string>();
  const suffixes = new Set<string>();
  for (const r of routes) {
    for (const h of r.hosts?.exact ?? []) exact.add(h);
    for (const s of r.hosts?.wildcard ?? []) suffixes.add(s);
  }
  return (host) => {
    if (exact.has(host)) return true;
    for (let dot = host.indexOf('.'); dot >= 0 && suffixes.size > 0; dot = host.indexOf('.', dot + 1)) if (suffixes.has(host.slice(dot))) return true;
    return false;
  };
}
