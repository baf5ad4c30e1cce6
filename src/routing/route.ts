// What the router needs of a route: where it applies. The orchestrator's compiled route carries more.
import { HOST_PATTERN, ConfigError, type ConfigReport, type RouteConfig } from '../config/index.ts';
import { canonicalPath } from '../core/index.ts';
import { parseTemplate, type PathTemplate } from './template.ts';

export interface HostMatcher {
  /** Exact lower-case names. */
  readonly exact: readonly string[];
  /** Suffixes of `*.example.com` patterns, stored as '.example.com'. */
  readonly wildcard: readonly string[];
}

export interface RoutableRoute {
  /** Position in the file: earlier routes win. */
  readonly index: number;
  readonly name: string;
  /** null: any host. */
  readonly hosts: HostMatcher | null;
  /** Canonical path prefix without trailing slash ('' for /), or the exact path for `=/x`. */
  readonly path: string;
  readonly exact: boolean;
  /** Named segments (`/tenants/{tenant}`); null for a plain prefix or exact path. */
  readonly template: PathTemplate | null;
  /** null: any method. */
  readonly methods: ReadonlySet<string> | null;
}

/** What a route matches, compiled: frozen. */
export type CompiledMatch = Pick<RoutableRoute, 'hosts' | 'path' | 'exact' | 'template' | 'methods'>;

/** `match.host` (one pattern or a list): null for any host; reports bad patterns with `path` under `match`. */
export function compileHostMatcher(host: string | readonly string[] | undefined, report: ConfigReport): HostMatcher | null {
  if (host === undefined) return null;
  const list = typeof host === 'string' ? [host] : host;
  const exact: string[] = [];
  const wildcard: string[] = [];
  list.forEach((h, i) => {
    const lower = h.toLowerCase().replace(/\.$/, '');
    const path = typeof host === 'string' ? ['host'] : ['host', i];
    if (!HOST_PATTERN.test(lower)) report(new ConfigError('CFG_BAD_VALUE', path, `invalid host pattern "${h}" (exact name or *.example.com)`));
    else if (lower.startsWith('*.')) wildcard.push(lower.slice(1));
    else exact.push(lower);
  });
  return Object.freeze({ exact: Object.freeze(exact), wildcard: Object.freeze(wildcard) });
}

/** A route's `match`: hosts, canonical path (or template) and methods. Reports with `path` under `match`. */
export function compileRouteMatch(match: RouteConfig['match'], report: ConfigReport): CompiledMatch {
  const hosts = compileHostMatcher(match.host, report);
  const exact = match.path.startsWith('=');
  let path = '';
  let template: PathTemplate | null = null;
  try {
    const canonical = canonicalPath(exact ? match.path.slice(1) : match.path);
    if (canonical.path !== canonical.matchPath) throw new Error('route paths may not contain ;parameters');
    path = exact ? canonical.path : canonical.path.replace(/\/$/, '');
    template = parseTemplate(path) ?? null;
  } catch (err) {
    report(new ConfigError('CFG_BAD_VALUE', ['path'], `invalid path: ${(err as { detail?: string }).detail ?? (err as Error).message}`));
  }
  return Object.freeze({ hosts, path, exact, template, methods: match.methods ? new Set(match.methods) : null });
}
