// Compiled router: host index (exact names, *.suffix wildcards, any-host) → path-prefix maps.
// A lookup costs one Map probe per path segment per host bucket, independent of the number of routes.
import type { CompiledRoute } from './route.ts';
import { matchTemplate } from './template.ts';

interface Bucket {
  /** prefix ('' | '/a' | '/a/b') → routes in file order */
  readonly prefix: Map<string, CompiledRoute[]>;
  readonly exact: Map<string, CompiledRoute[]>;
  /** Routes with named segments, keyed by their literal prefix; the template is checked on a hit. */
  readonly templated: Map<string, CompiledRoute[]>;
}

export interface Router {
  /** The first route in file order matching host, canonical match path and method; undefined: default deny. */
  match(host: string, matchPath: string, method: string): CompiledRoute | undefined;
  readonly routes: readonly CompiledRoute[];
}

function newBucket(): Bucket {
  return { prefix: new Map(), exact: new Map(), templated: new Map() };
}

function add(bucket: Bucket, route: CompiledRoute): void {
  const map = route.template ? bucket.templated : route.exact ? bucket.exact : bucket.prefix;
  const key = route.template ? route.template.literalPrefix : route.path;
  const list = map.get(key);
  if (list) list.push(route);
  else map.set(key, [route]);
}

function firstTemplated(list: CompiledRoute[] | undefined, matchPath: string, method: string, best: CompiledRoute | undefined) {
  if (list === undefined) return best;
  for (const r of list) {
    if (best !== undefined && r.index >= best.index) return best;
    if ((r.methods === null || r.methods.has(method)) && r.template !== null && matchTemplate(r.template, matchPath, r.exact)) return r;
  }
  return best;
}

function firstAllowing(list: CompiledRoute[] | undefined, method: string, best: CompiledRoute | undefined) {
  if (list === undefined) return best;
  for (const r of list) {
    if (best !== undefined && r.index >= best.index) return best;
    if (r.methods === null || r.methods.has(method)) return r;
  }
  return best;
}

function searchBucket(b: Bucket, prefixPath: string, exactPath: string, method: string, best: CompiledRoute | undefined) {
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

export function createRouter(routes: readonly CompiledRoute[]): Router {
  const byHost = new Map<string, Bucket>();
  const byWildcard = new Map<string, Bucket>();
  const anyHost = newBucket();
  let anyHostUsed = false;
  for (const route of routes) {
    if (route.hosts === null) {
      add(anyHost, route);
      anyHostUsed = true;
      continue;
    }
    for (const h of route.hosts.exact) {
      let b = byHost.get(h);
      if (!b) byHost.set(h, (b = newBucket()));
      add(b, route);
    }
    for (const suffix of route.hosts.wildcard) {
      let b = byWildcard.get(suffix);
      if (!b) byWildcard.set(suffix, (b = newBucket()));
      add(b, route);
    }
  }
  const wildcardUsed = byWildcard.size > 0;

  return {
    routes,
    match(host, matchPath, method) {
      // A trailing slash names the same prefix (/api/ is under /api); exact routes compare the whole path.
      const prefixPath = matchPath.endsWith('/') ? matchPath.slice(0, -1) : matchPath;
      let best: CompiledRoute | undefined;
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
