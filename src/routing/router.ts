// Compiled router: host index (exact names, *.suffix wildcards, any-host) → path-prefix maps.
// A lookup costs one Map probe per path segment per host bucket, independent of the number of routes.
import type { RoutableRoute } from './route.ts';
import { matchTemplate } from './template.ts';

interface Bucket<R extends RoutableRoute> {
  /** prefix ('' | '/a' | '/a/b') → routes in file order */
  readonly prefix: Map<string, R[]>;
  readonly exact: Map<string, R[]>;
  /** Routes with named segments, keyed by their literal prefix; the template is checked on a hit. */
  readonly templated: Map<string, R[]>;
}

export interface Router<R extends RoutableRoute = RoutableRoute> {
  /** The first route in file order matching host, canonical match path and method; undefined: default deny. */
  match(host: string, matchPath: string, method: string): R | undefined;
  readonly routes: readonly R[];
}

function newBucket<R extends RoutableRoute>(): Bucket<R> {
  return { prefix: new Map(), exact: new Map(), templated: new Map() };
}

function add<R extends RoutableRoute>(bucket: Bucket<R>, route: R): void {
  const map = route.template ? bucket.templated : route.exact ? bucket.exact : bucket.prefix;
  const key = route.template ? route.template.literalPrefix : route.path;
  const list = map.get(key);
  if (list) list.push(route);
  else map.set(key, [route]);
}

function firstTemplated<R extends RoutableRoute>(list: R[] | undefined, matchPath: string, method: string, best: R | undefined) {
  if (list === undefined) return best;
  for (const r of list) {
    if (best !== undefined && r.index >= best.index) return best;
    if ((r.methods === null || r.methods.has(method)) && r.template !== null && matchTemplate(r.template, matchPath, r.exact)) return r;
  }
  return best;
}

function firstAllowing<R extends RoutableRoute>(list: R[] | undefined, method: string, best: R | undefined) {
  if (list === undefined) return best;
  for (const r of list) {
    if (best !== undefined && r.index >= best.index) return best;
    if (r.methods === null || r.methods.has(method)) return r;
  }
  return best;
}

function searchBucket<R extends RoutableRoute>(b: Bucket<R>, prefixPath: string, exactPath: string, method: string, best: R | undefined) {
  best = firstAllowing(b.exact.get(exactPath), method, best);
  const templated = b.templated.size > 0;
  if (b.prefix.size === 0 && !templated) return best;
  best = firstAllowing(b.prefix.get(''), method, best);
  if (templated) best = firstTemplated(b.templated.get(''), exactPath, method, best);
  // Every segment boundary of the path is a candidate prefix: /a/b/c → /a, /a/b, /a/b/c.
  for (let i = prefixPath.indexOf('/', 1); ; i = prefixPath.indexOf('/', i + 1)) {
    const prefix = i < 0 ? prefixPath : prefixPath.slice(0, i);
    if (prefix.length > 0) {
      best = firstAllowing(b.prefix.get(prefix), method, best);
      if (templated) best = firstTemplated(b.templated.get(prefix), exactPath, method, best);
    }
    if (i < 0) return best;
  }
}

export function createRouter<R extends RoutableRoute>(routes: readonly R[]): Router<R> {
  const byHost = new Map<string, Bucket<R>>();
  const byWildcard = new Map<string, Bucket<R>>();
  const anyHost = newBucket<R>();
  let anyHostUsed = false;
  for (const route of routes) {
    if (route.hosts === null) {
      add(anyHost, route);
      anyHostUsed = true;
      continue;
    }
    for (const h of route.hosts.exact) {
      let b = byHost.get(h);
      if (!b) byHost.set(h, (b = newBucket<R>()));
      add(b, route);
    }
    for (const suffix of route.hosts.wildcard) {
      let b = byWildcard.get(suffix);
      if (!b) byWildcard.set(suffix, (b = newBucket<R>()));
      add(b, route);
    }
  }
  const wildcardUsed = byWildcard.size > 0;

  return {
    routes,
    match(host, matchPath, method) {
      // A trailing slash names the same prefix (/api/ is under /api); exact routes compare the whole path.
      const prefixPath = matchPath.endsWith('/') ? matchPath.slice(0, -1) : matchPath;
      let best: R | undefined;
      const hostBucket = byHost.get(host);
      if (hostBucket) best = searchBucket(hostBucket, prefixPath, matchPath, method, best);
      if (wildcardUsed) {
        for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
          const b = byWildcard.get(host.slice(dot));
          if (b) best = searchBucket(b, prefixPath, matchPath, method, best);
        }
      }
      if (anyHostUsed) best = searchBucket(anyHost, prefixPath, matchPath, method, best);
      return best;
    },
  };
}
