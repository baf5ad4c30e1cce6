// Load-time checks of upstream.case_insensitive: the flag describes the app behind an origin, so routes to one
// origin must agree on it (an error); and `validate` warns about routes that only differ by case.
import { ConfigError } from '../config/index.ts';
import type { RoutableRoute } from './route.ts';
import { findShadowed } from './shadow.ts';
import { foldedRoute, type SpelledRoute } from './spelling.ts';

/** Routes whose upstream origin another route names with a different case_insensitive (path from the root). */
export function spellingConflicts(routes: readonly SpelledRoute[]): ConfigError[] {
  const first = new Map<string, SpelledRoute>();
  const out: ConfigError[] = [];
  for (const r of routes) {
    const seen = first.get(r.spelling.origin);
    if (seen === undefined) first.set(r.spelling.origin, r);
    else if (seen.spelling.caseInsensitive !== r.spelling.caseInsensitive) {
      const message =
        `routes "${seen.name}" and "${r.name}" share the upstream ${r.spelling.origin} but disagree on case_insensitive ` +
        '(it describes the app behind the origin: set it the same on every route to it)';
      out.push(new ConfigError('CFG_CONFLICT', ['routes', r.index, 'upstream', 'case_insensitive'], message));
    }
  }
  return out;
}

/**
 * On a case-insensitive origin: a route that an earlier route of the same origin catches once paths are
 * folded (and not already without folding). Requests for it are refused 400 rather than routed.
 */
export function findCaseShadowed<R extends SpelledRoute>(routes: readonly R[]): Array<{ route: R; by: R }> {
  const exact = new Set(findShadowed(routes).map((s) => s.route.index));
  const byOrigin = new Map<string, R[]>();
  for (const r of routes) {
    if (!r.spelling.caseInsensitive) continue;
    const list = byOrigin.get(r.spelling.origin);
    if (list) list.push(r);
    else byOrigin.set(r.spelling.origin, [r]);
  }
  const out: Array<{ route: R; by: R }> = [];
  for (const list of byOrigin.values()) {
    const original = new Map<number, R>(list.map((r) => [r.index, r]));
    for (const { route, by } of findShadowed<RoutableRoute>(list.map(foldedRoute))) {
      if (exact.has(route.index)) continue;
      out.push({ route: original.get(route.index) as R, by: original.get(by.index) as R });
    }
  }
  return out.sort((a, b) => a.route.index - b.route.index);
}
