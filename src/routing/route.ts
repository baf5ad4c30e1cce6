// What the router needs of a route: where it applies. The orchestrator's compiled route carries more.
import type { PathTemplate } from './template.ts';

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
