// Router: host index (exact, *.suffix, any) + segment-boundary prefixes + exact paths + methods, file order wins.
import { describe, expect, it, beforeAll } from 'vitest';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { canonicalTarget } from '../../src/normalize/target.ts';
import type { CompiledRoute } from '../../src/routing/route.ts';
import { createRouter, type Router } from '../../src/routing/router.ts';
import { tempDir } from '../helpers/gateway.ts';

interface RouteSpec {
  name: string;
  host?: string | string[];
  path?: string;
  methods?: string[];
}

/** Compiles routes the way the gateway does: YAML text → load → compile → router. */
async function compileRoutes(specs: RouteSpec[]): Promise<Router> {
  const lines = specs.map((s) => {
    const match: Record<string, unknown> = {};
    if (s.host !== undefined) match.host = s.host;
    if (s.path !== undefined) match.path = s.path;
    if (s.methods !== undefined) match.methods = s.methods;
    return `  - { name: ${s.name}, match: ${JSON.stringify(match)}, upstream: { url: "http://127.0.0.1:9" }, public: true }`;
  });
  const text = `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
routes:
${lines.join('\n')}
`;
  return (await compileConfig(parseConfigText(text, 'router.yaml', tempDir(), {}))).router;
}

/** A CompiledRoute with only what the router reads (for large tables without compiling upstreams). */
function rawRoute(index: number, spec: RouteSpec): CompiledRoute {
  const hosts = spec.host === undefined ? [] : Array.isArray(spec.host) ? spec.host : [spec.host];
  const exact = spec.path?.startsWith('=') ?? false;
  const path = exact ? (spec.path as string).slice(1) : (spec.path ?? '/').replace(/\/$/, '');
  return {
    index,
    name: spec.name,
    hosts:
      spec.host === undefined
        ? null
        : { exact: hosts.filter((h) => !h.startsWith('*.')), wildcard: hosts.filter((h) => h.startsWith('*.')).map((h) => h.slice(1)) },
    path,
    exact,
    methods: spec.methods ? new Set(spec.methods) : null,
  } as unknown as CompiledRoute;
}

/** Routes a raw request target the way the request path does: canonicalize once, match on matchPath. */
function route(router: Router, target: string, host = 'app.example.com', method = 'GET'): string | undefined {
  return router.match(host, canonicalTarget(target).matchPath, method)?.name;
}

describe('path prefixes at segment boundaries', () => {
  let router!: Awaited<ReturnType<typeof compileRoutes>>;
  beforeAll(async () => {
    router = await compileRoutes([{ name: 'api', path: '/api' }]);
  });

  it.each(['/api', '/api/', '/api/x', '/api/x/y/z', '/api/x?q=1', '/api;v=1', '/api/%78'])('/api matches %s', (target) => {
    expect(route(router, target)).toBe('api');
  });

  it.each(['/apix', '/api-x', '/ap', '/', '/x/api', '/API', '/apix/y', '/api.json'])('/api never matches %s', (target) => {
    expect(route(router, target)).toBeUndefined();
  });

  it('a configured trailing slash is the same prefix', async () => {
    const r = await compileRoutes([{ name: 'static', path: '/static/' }]);
    expect(route(r, '/static/app.js')).toBe('static');
    expect(route(r, '/static/')).toBe('static');
    expect(route(r, '/static')).toBe('static');
    expect(route(r, '/staticx')).toBeUndefined();
  });

  it('/ matches every path', async () => {
    const r = await compileRoutes([{ name: 'root', path: '/' }]);
    for (const t of ['/', '/a', '/a/b/', '/.well-known/x']) expect(route(r, t)).toBe('root');
  });

  it('a route without match covers everything', async () => {
    const r = await compileRoutes([{ name: 'all' }]);
    expect(route(r, '/anything', 'other.test', 'DELETE')).toBe('all');
  });

  it('deeper prefixes', async () => {
    const r = await compileRoutes([{ name: 'ab', path: '/a/b' }]);
    expect(route(r, '/a/b/c')).toBe('ab');
    expect(route(r, '/a/b')).toBe('ab');
    expect(route(r, '/a/bc')).toBeUndefined();
    expect(route(r, '/a')).toBeUndefined();
    expect(route(r, '/a/')).toBeUndefined();
  });

  it('route paths are canonicalized like request paths', async () => {
    const r = await compileRoutes([{ name: 'enc', path: '/%61pi' }]);
    expect(route(r, '/api/x')).toBe('enc');
    expect(route(r, '/%61pi/x')).toBe('enc');
  });
});

describe('exact paths (=/x)', () => {
  let router!: Awaited<ReturnType<typeof compileRoutes>>;
  beforeAll(async () => {
    router = await compileRoutes([{ name: 'login', path: '=/login' }]);
  });

  it('matches only the exact path', () => {
    expect(route(router, '/login')).toBe('login');
    expect(route(router, '/login?next=/x')).toBe('login');
  });

  it.each(['/login/', '/login/x', '/loginx', '/', '/Login'])('=/login does not match %s', (target) => {
    expect(route(router, target)).toBeUndefined();
  });

  it('=/ matches only the root', async () => {
    const r = await compileRoutes([{ name: 'root', path: '=/' }]);
    expect(route(r, '/')).toBe('root');
    expect(route(r, '/a')).toBeUndefined();
  });

  it('an exact route with a trailing slash matches only that spelling', async () => {
    const r = await compileRoutes([{ name: 'dir', path: '=/docs/' }]);
    expect(route(r, '/docs/')).toBe('dir');
    expect(route(r, '/docs')).toBeUndefined();
    expect(route(r, '/docs/a')).toBeUndefined();
  });
});

describe(';params are stripped for matching', () => {
  let router!: Awaited<ReturnType<typeof compileRoutes>>;
  beforeAll(async () => {
    router = await compileRoutes([
    { name: 'admin', path: '/admin' },
    { name: 'login', path: '=/login' },
  ]);
  });

  it('/admin;x/y matches /admin', () => {
    expect(route(router, '/admin;x/y')).toBe('admin');
    expect(route(router, '/admin;jsessionid=1')).toBe('admin');
    expect(route(router, '/admin;x=/y')).toBe('admin');
  });

  it('=/login matches /login;jsessionid=1 but not /login;x/y', () => {
    expect(route(router, '/login;jsessionid=1')).toBe('login');
    expect(route(router, '/login;x/y')).toBeUndefined();
  });

  it('params do not create a segment boundary: /adminx;y is not under /admin', () => {
    expect(route(router, '/adminx;y')).toBeUndefined();
  });
});

describe('hosts', () => {
  let router!: Awaited<ReturnType<typeof compileRoutes>>;
  beforeAll(async () => {
    router = await compileRoutes([
    { name: 'exact', host: 'crm.example.com' },
    { name: 'wild', host: '*.example.com' },
    { name: 'list', host: ['one.test', 'two.test'] },
  ]);
  });

  it('exact host', () => {
    expect(route(router, '/', 'crm.example.com')).toBe('exact');
    expect(route(router, '/', 'one.test')).toBe('list');
    expect(route(router, '/', 'two.test')).toBe('list');
    expect(route(router, '/', 'three.test')).toBeUndefined();
    expect(route(router, '/', 'crm.example.com.evil.test')).toBeUndefined();
  });

  it('*.example.com matches one or more labels, never the apex or a look-alike suffix', () => {
    expect(route(router, '/', 'a.example.com')).toBe('wild');
    expect(route(router, '/', 'a.b.example.com')).toBe('wild');
    expect(route(router, '/', 'example.com')).toBeUndefined();
    expect(route(router, '/', 'badexample.com')).toBeUndefined();
    expect(route(router, '/', 'example.com.evil.test')).toBeUndefined();
    expect(route(router, '/', 'com')).toBeUndefined();
  });

  it('config hosts are case-insensitive and may end with a dot', async () => {
    const r = await compileRoutes([{ name: 'upper', host: ['CRM.Example.COM.', '*.Corp.Example'] }]);
    expect(route(r, '/', 'crm.example.com')).toBe('upper');
    expect(route(r, '/', 'a.corp.example')).toBe('upper');
  });

  it('host-less routes match any host', async () => {
    const r = await compileRoutes([{ name: 'any', path: '/x' }]);
    for (const h of ['a.test', '127.0.0.1', 'localhost', '::1']) expect(route(r, '/x/y', h)).toBe('any');
  });

  it('a nested wildcard and its parent wildcard: the earlier one wins', async () => {
    const r = await compileRoutes([
      { name: 'deep', host: '*.b.example.com' },
      { name: 'shallow', host: '*.example.com' },
    ]);
    expect(route(r, '/', 'a.b.example.com')).toBe('deep');
    expect(route(r, '/', 'b.example.com')).toBe('shallow');
    const reversed = await compileRoutes([
      { name: 'shallow', host: '*.example.com' },
      { name: 'deep', host: '*.b.example.com' },
    ]);
    expect(route(reversed, '/', 'a.b.example.com')).toBe('shallow');
  });
});

describe('methods', () => {
  let router!: Awaited<ReturnType<typeof compileRoutes>>;
  beforeAll(async () => {
    router = await compileRoutes([
    { name: 'read', path: '/api', methods: ['GET', 'HEAD'] },
    { name: 'write', path: '/api', methods: ['POST'] },
  ]);
  });

  it('routes by method', () => {
    expect(route(router, '/api/x', undefined, 'GET')).toBe('read');
    expect(route(router, '/api/x', undefined, 'HEAD')).toBe('read');
    expect(route(router, '/api/x', undefined, 'POST')).toBe('write');
  });

  it('a method no route allows is no match (default deny)', () => {
    expect(route(router, '/api/x', undefined, 'DELETE')).toBeUndefined();
    expect(route(router, '/api/x', undefined, 'get')).toBeUndefined();
  });

  it('a method-restricted route lets a later route take the other methods', async () => {
    const r = await compileRoutes([
      { name: 'get-only', path: '/a', methods: ['GET'] },
      { name: 'fallback', path: '/' },
    ]);
    expect(route(r, '/a', undefined, 'GET')).toBe('get-only');
    expect(route(r, '/a', undefined, 'PUT')).toBe('fallback');
  });
});

describe('file order wins', () => {
  it('a broader earlier route beats a more specific later one', async () => {
    const r = await compileRoutes([
      { name: 'root', path: '/' },
      { name: 'api', path: '/api' },
      { name: 'login', path: '=/login' },
    ]);
    expect(route(r, '/api/x')).toBe('root');
    expect(route(r, '/login')).toBe('root');
  });

  it('a specific earlier route beats a broader later one', async () => {
    const r = await compileRoutes([
      { name: 'login', path: '=/login' },
      { name: 'api', path: '/api' },
      { name: 'root', path: '/' },
    ]);
    expect(route(r, '/login')).toBe('login');
    expect(route(r, '/login/x')).toBe('root');
    expect(route(r, '/api/x')).toBe('api');
    expect(route(r, '/other')).toBe('root');
  });

  it('an earlier any-host route beats a later exact-host route', async () => {
    const r = await compileRoutes([
      { name: 'any', path: '/api' },
      { name: 'host', host: 'crm.example.com', path: '/api' },
    ]);
    expect(route(r, '/api/x', 'crm.example.com')).toBe('any');
  });

  it('an earlier exact-host route beats a later any-host route', async () => {
    const r = await compileRoutes([
      { name: 'host', host: 'crm.example.com', path: '/api' },
      { name: 'any', path: '/' },
    ]);
    expect(route(r, '/api/x', 'crm.example.com')).toBe('host');
    expect(route(r, '/api/x', 'other.example.com')).toBe('any');
    expect(route(r, '/x', 'crm.example.com')).toBe('any');
  });

  it('across exact, wildcard and any-host buckets', async () => {
    const r = await compileRoutes([
      { name: 'wild', host: '*.example.com', path: '/w' },
      { name: 'exact', host: 'a.example.com', path: '/' },
      { name: 'any', path: '/' },
    ]);
    expect(route(r, '/w/1', 'a.example.com')).toBe('wild');
    expect(route(r, '/x', 'a.example.com')).toBe('exact');
    expect(route(r, '/w/1', 'b.example.com')).toBe('wild');
    expect(route(r, '/x', 'b.example.com')).toBe('any');
    const r2 = await compileRoutes([
      { name: 'exact', host: 'a.example.com', path: '/' },
      { name: 'wild', host: '*.example.com', path: '/w' },
    ]);
    expect(route(r2, '/w/1', 'a.example.com')).toBe('exact');
  });

  it('the same route listed under several hosts keeps its position', async () => {
    const r = await compileRoutes([
      { name: 'multi', host: ['a.test', '*.b.test'], path: '/m' },
      { name: 'any', path: '/' },
    ]);
    expect(route(r, '/m', 'a.test')).toBe('multi');
    expect(route(r, '/m', 'x.b.test')).toBe('multi');
    expect(route(r, '/m', 'b.test')).toBe('any');
  });
});

describe('no match', () => {
  it('returns undefined for an empty router', () => {
    expect(createRouter([]).match('a.test', '/', 'GET')).toBeUndefined();
  });

  it('returns undefined when host, path or method do not fit', async () => {
    const r = await compileRoutes([{ name: 'only', host: 'a.test', path: '/x', methods: ['GET'] }]);
    expect(route(r, '/x', 'a.test', 'GET')).toBe('only');
    expect(route(r, '/x', 'b.test', 'GET')).toBeUndefined();
    expect(route(r, '/y', 'a.test', 'GET')).toBeUndefined();
    expect(route(r, '/x', 'a.test', 'POST')).toBeUndefined();
  });
});

describe('a 10,000-route table', () => {
  /** The obvious O(n) definition of matching; the indexed router must agree with it. */
  function reference(routes: readonly CompiledRoute[], host: string, matchPath: string, method: string): CompiledRoute | undefined {
    const prefixPath = matchPath.endsWith('/') ? matchPath.slice(0, -1) : matchPath;
    return routes.find((r) => {
      if (r.methods !== null && !r.methods.has(method)) return false;
      if (r.hosts !== null) {
        const ok = r.hosts.exact.includes(host) || r.hosts.wildcard.some((s) => host.endsWith(s) && host.length > s.length);
        if (!ok) return false;
      }
      if (r.exact) return matchPath === r.path;
      return r.path === '' || prefixPath === r.path || prefixPath.startsWith(`${r.path}/`);
    });
  }

  // Deterministic pseudo-random generator: the same table on every run.
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const words = ['api', 'v1', 'v2', 'users', 'admin', 'static', 'login', 'a', 'b', 'x'];
  const hostPool = ['a.test', 'b.test', 'x.a.test', 'y.x.a.test', 'c.example.com', 'd.example.com'];
  const segs = (n: number) => Array.from({ length: n }, () => words[rand(words.length)]).join('/');

  const routes: CompiledRoute[] = [];
  for (let i = 0; i < 10_000; i++) {
    const kind = rand(10);
    const spec: RouteSpec = { name: `r${i}`, path: `/${segs(2 + rand(2))}` };
    if (kind < 4) spec.host = hostPool[rand(hostPool.length)];
    else if (kind < 6) spec.host = rand(2) === 0 ? '*.a.test' : '*.example.com';
    else if (kind === 6) spec.host = [hostPool[rand(hostPool.length)] as string, '*.x.a.test'];
    if (rand(4) === 0) spec.path = `=${spec.path}${rand(2) === 0 ? '/' : ''}`;
    if (rand(3) === 0) spec.methods = rand(2) === 0 ? ['GET'] : ['POST', 'PUT'];
    routes.push(rawRoute(i, spec));
  }
  // Unique tails, one per route, to check that every single route is reachable by its own path.
  const unique: CompiledRoute[] = Array.from({ length: 10_000 }, (_, i) =>
    rawRoute(i, { name: `u${i}`, host: i % 3 === 0 ? undefined : `h${i % 7}.test`, path: `/svc/${i}` }),
  );

  it('every one of 10,000 distinct routes is found by its own path and not by its neighbours', () => {
    const router = createRouter(unique);
    for (let i = 0; i < 10_000; i++) {
      const host = i % 3 === 0 ? 'any.test' : `h${i % 7}.test`;
      expect(router.match(host, `/svc/${i}`, 'GET')?.name).toBe(`u${i}`);
      expect(router.match(host, `/svc/${i}/deeper/x`, 'GET')?.name).toBe(`u${i}`);
      if (router.match(host, `/svc/${i}0`, 'GET')?.name === `u${i}`) throw new Error(`/svc/${i}0 matched u${i}`);
    }
    expect(router.match('h1.test', '/svc/10001', 'GET')).toBeUndefined();
    expect(router.match('nohost.test', '/svc/1', 'GET')).toBeUndefined();
  });

  it('agrees with the linear definition on 20,000 random requests', () => {
    const router = createRouter(routes);
    const hosts = [...hostPool, 'a.x.a.test', 'unknown.test', 'example.com', 'a.test.evil'];
    let matched = 0;
    const distinct = new Set<string>();
    for (let q = 0; q < 20_000; q++) {
      const host = hosts[rand(hosts.length)] as string;
      const path = `/${segs(1 + rand(4))}${rand(4) === 0 ? '/' : ''}`;
      const method = ['GET', 'POST', 'PUT', 'DELETE'][rand(4)] as string;
      const want = reference(routes, host, path, method);
      const got = router.match(host, path, method);
      if (got !== want) throw new Error(`${method} ${host}${path}: router ${got?.name} != reference ${want?.name}`);
      if (got) {
        matched++;
        distinct.add(got.name);
      }
    }
    // The table is dense enough that most requests match something: the comparison is not vacuous.
    expect(matched).toBeGreaterThan(2_000);
    expect(matched).toBeLessThan(18_000);
    expect(distinct.size).toBeGreaterThan(200);
  });
});
