// Compile a validated Config into immutable runtime objects. Runs at load and on reload, never per request.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { compileAddressSet, type AddressSet } from '../normalize/cidr.ts';
import { canonicalPath } from '../normalize/target.ts';
import { compileUpstream } from '../proxy/upstream.ts';
import type { CompiledRoute, HostMatcher } from '../routing/route.ts';
import { createRouter, type Router } from '../routing/router.ts';
import { ConfigError, formatPath, type ConfigProblem } from './errors.ts';
import type { LoadedConfig } from './load.ts';
import type { Config, RouteConfig } from './schema.ts';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
  readonly clientAuth: 'none' | 'optional' | 'require';
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface CompiledConfig {
  readonly source: LoadedConfig;
  readonly config: Config;
  readonly routes: readonly CompiledRoute[];
  readonly router: Router;
  readonly trustedProxies: AddressSet;
  readonly tls: TlsMaterial | null;
  readonly identityPrefix: string;
}

const HOST_PATTERN = /^(\*\.)?[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*$/;

export function compileConfig(source: LoadedConfig): CompiledConfig {
  const { config, file, baseDir, locate } = source;
  const problems: ConfigProblem[] = [];
  const report = (path: PropertyKey[], message: string) =>
    problems.push({ file, path: formatPath(path), message, ...locate(path) });

  let trustedProxies: AddressSet = compileAddressSet([]);
  config.trusted_proxies.forEach((cidr, i) => {
    try {
      compileAddressSet([cidr]);
    } catch (err) {
      report(['trusted_proxies', i], (err as Error).message);
    }
  });
  if (problems.length === 0) trustedProxies = compileAddressSet(config.trusted_proxies);

  let tls: TlsMaterial | null = null;
  if (config.listen.tls) {
    const t = config.listen.tls;
    const read = (key: 'cert' | 'key' | 'client_ca', p: string | undefined) => {
      if (p === undefined) return undefined;
      try {
        return readFileSync(resolve(baseDir, p), 'utf8');
      } catch (err) {
        report(['listen', 'tls', key], `cannot read ${p} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        return undefined;
      }
    };
    const cert = read('cert', t.cert);
    const key = read('key', t.key);
    const ca = read('client_ca', t.client_ca);
    if (t.client_auth !== 'none' && t.client_ca === undefined) {
      report(['listen', 'tls', 'client_auth'], 'client_auth needs listen.tls.client_ca');
    }
    if (cert !== undefined && key !== undefined) tls = { cert, key, ca, clientAuth: t.client_auth, minVersion: t.min_version };
  }

  const names = new Set<string>();
  const routes: CompiledRoute[] = [];
  config.routes.forEach((r, index) => {
    if (names.has(r.name)) report(['routes', index, 'name'], `duplicate route name "${r.name}"`);
    names.add(r.name);
    const route = compileRoute(r, index, baseDir, (path, msg) => report(['routes', index, ...path], msg));
    if (route) routes.push(route);
  });

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    source,
    config,
    routes,
    router: createRouter(routes),
    trustedProxies,
    tls,
    identityPrefix: config.identity_headers.prefix.toLowerCase(),
  };
}

function compileRoute(
  r: RouteConfig,
  index: number,
  baseDir: string,
  report: (path: PropertyKey[], message: string) => void,
): CompiledRoute | undefined {
  let ok = true;
  const fail = (path: PropertyKey[], message: string) => {
    ok = false;
    report(path, message);
  };

  let hosts: HostMatcher | null = null;
  if (r.match.host !== undefined) {
    const list = Array.isArray(r.match.host) ? r.match.host : [r.match.host];
    const exact: string[] = [];
    const wildcard: string[] = [];
    list.forEach((h, i) => {
      const lower = h.toLowerCase().replace(/\.$/, '');
      const path = Array.isArray(r.match.host) ? ['match', 'host', i] : ['match', 'host'];
      if (!HOST_PATTERN.test(lower)) fail(path, `invalid host pattern "${h}" (exact name or *.example.com)`);
      else if (lower.startsWith('*.')) wildcard.push(lower.slice(1));
      else exact.push(lower);
    });
    hosts = { exact, wildcard };
  }

  let path = '';
  let exact = false;
  const rawPath = r.match.path.startsWith('=') ? ((exact = true), r.match.path.slice(1)) : r.match.path;
  try {
    const canonical = canonicalPath(rawPath);
    if (canonical.path !== canonical.matchPath) throw new Error('route paths may not contain ;parameters');
    path = exact ? canonical.path : canonical.path.replace(/\/$/, '');
  } catch (err) {
    fail(['match', 'path'], `invalid path: ${(err as { detail?: string }).detail ?? (err as Error).message}`);
  }

  let upstream;
  try {
    upstream = compileUpstream(r.upstream, baseDir);
  } catch (err) {
    const message = (err as Error).message;
    fail(['upstream', /upstream\.tls|cannot read/.test(message) ? 'tls' : 'url'], message);
  }

  if (!ok || upstream === undefined) return undefined;
  return {
    index,
    name: r.name,
    hosts,
    path,
    exact,
    methods: r.match.methods ? new Set(r.match.methods) : null,
    upstream,
    public: r.public,
    websocket: r.websocket,
  };
}
