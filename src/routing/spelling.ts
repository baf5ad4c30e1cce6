// Other spellings of a routed path that the upstream would read as another route's path (issue 17 items 2, 5).
// Compiled at load: per upstream origin that folds paths the Windows way (`upstream.case_insensitive`), a
// router over that origin's routes with folded paths. Per request: one fold and one lookup, only for such
// origins; everything else pays one `includes('%3B')`.
import { GatewayError, type CanonicalTarget } from '../core/index.ts';
import { foldPath } from '../normalize/index.ts';
import type { RoutableRoute } from './route.ts';
import { createRouter, type Router } from './router.ts';
import { parseTemplate } from './template.ts';

/** What a route's upstream says about how its app reads paths. */
export interface PathSpelling {
  /** scheme://host:port: the flags belong to the app behind it, so every route to it shares them. */
  readonly origin: string;
  /** The app folds case (IIS, ASP.NET, Windows file servers, case-insensitive Java routers). */
  readonly caseInsensitive: boolean;
  /** The app treats `%3B` as data, never as the `;` that starts path parameters. */
  readonly allowEncodedSemicolon: boolean;
}

export type SpelledRoute = RoutableRoute & { readonly spelling: PathSpelling };

/** Throws GW_ERR_BAD_PATH when `target` is a spelling `route`'s upstream would read differently. */
export type SpellingGuard = (route: SpelledRoute, host: string, target: CanonicalTarget, method: string) => void;

function bad(detail: string): GatewayError {
  return new GatewayError('GW_ERR_BAD_PATH', detail);
}

/** The route with its paths folded (same index: the folded router's answer names the original route). */
export function foldedRoute<R extends RoutableRoute>(r: R): RoutableRoute {
  const path = foldPath(r.path);
  return { index: r.index, name: r.name, hosts: r.hosts, path, exact: r.exact, template: r.template ? (parseTemplate(path) ?? null) : null, methods: r.methods };
}

// IIS resolves 8.3 short names (`/ADMINI~1` is `/administrator`), and ASP.NET strips cookieless-session
// segments (`/(S(x))/admin` is `/admin`): neither spelling can be routed the way the app reads it.
const SHORT_NAME = /~[0-9]/;
const COOKIELESS = /\/(?:\(|%28)[A-Za-z](?:\(|%28)/;

/** Windows drops a trailing `.` or space from a name: `admin.` and `admin%20` are `admin` there. */
function trailingDotOrSpace(matchPath: string): boolean {
  for (let i = matchPath.indexOf('/', 1); ; i = matchPath.indexOf('/', i + 1)) {
    const end = i < 0 ? matchPath.length : i;
    if (end > 1 && (matchPath.charCodeAt(end - 1) === 46 || matchPath.endsWith('%20', end))) return true;
    if (i < 0) return false;
  }
}

export function createSpellingGuard(routes: readonly SpelledRoute[]): SpellingGuard {
  const folded = new Map<string, Router>();
  const byOrigin = new Map<string, SpelledRoute[]>();
  for (const r of routes) {
    if (!r.spelling.caseInsensitive) continue;
    const list = byOrigin.get(r.spelling.origin);
    if (list) list.push(r);
    else byOrigin.set(r.spelling.origin, [r]);
  }
  for (const [origin, list] of byOrigin) folded.set(origin, createRouter(list.map(foldedRoute)));

  return (route, host, target, method) => {
    const spelling = route.spelling;
    if (!spelling.allowEncodedSemicolon && target.path.includes('%3B')) {
      // A backend that decodes before it cuts `;params` reads `/admin%3Bx` as `/admin`.
      throw bad('an encoded semicolon (%3B) is not allowed in the path');
    }
    if (!spelling.caseInsensitive) return;
    if (trailingDotOrSpace(target.matchPath)) throw bad('a path segment ending in . or a space is not allowed on this route');
    if (SHORT_NAME.test(target.matchPath)) throw bad('8.3 short names (~1) are not allowed on this route');
    if (COOKIELESS.test(target.path)) throw bad('ASP.NET cookieless session segments are not allowed on this route');
    const other = folded.get(spelling.origin)?.match(host, foldPath(target.matchPath), method);
    if (other !== undefined && other.index !== route.index) {
      throw bad('this spelling of the path belongs to another route of this upstream (its paths are case-insensitive)');
    }
  };
}
