// identity_headers.groups_filter: which of the identity's groups the upstream header and the signed assertion
// carry (prefixes and /regexes/, compiled at load), sorted by code unit so every instance sends the same
// list, cut at `max` (then flagged as truncated). Policy is not affected: it reads the identity itself.
import type { Identity } from '../core/index.ts';
import { GROUP_PATTERN_REGEX, type GroupsFilterConfig } from '../config/index.ts';

/** The groups one upstream gets. */
export interface GroupsView {
  readonly groups: readonly string[];
  /** More groups matched than `max`: the upstream must not read the list as complete. */
  readonly truncated: boolean;
  /** Which filter made it (part of the assertion's cache key). */
  readonly filter: string;
}

export interface GroupsFilter {
  readonly key: string;
  apply(identity: Identity): GroupsView;
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Compiles a filter (its patterns were checked by the schema). */
export function compileGroupsFilter(cfg: GroupsFilterConfig): GroupsFilter {
  const prefixes: string[] = [];
  const regexes: RegExp[] = [];
  for (const p of cfg.include ?? []) {
    const m = GROUP_PATTERN_REGEX.exec(p);
    if (m === null) prefixes.push(p);
    else regexes.push(new RegExp(m[1] as string, m[2]));
  }
  const all = cfg.include === undefined;
  const max = cfg.max ?? Number.POSITIVE_INFINITY;
  const key = JSON.stringify([cfg.include ?? null, cfg.max ?? null]);
  const matches = (g: string) => all || prefixes.some((p) => g.startsWith(p)) || regexes.some((r) => r.test(g));
  // Identities are cached per session or token: their view is computed once.
  const views = new WeakMap<Identity, GroupsView>();
  return Object.freeze({
    key,
    apply(identity: Identity): GroupsView {
      const known = views.get(identity);
      if (known !== undefined) return known;
      const kept = [...new Set(identity.groups.filter(matches))].sort(byCodeUnit);
      const truncated = kept.length > max;
      const view: GroupsView = Object.freeze({ groups: Object.freeze(truncated ? kept.slice(0, max) : kept), truncated, filter: key });
      views.set(identity, view);
      return view;
    },
  });
}

/** One compiled filter per config object: the global filter is compiled once for every route using it. */
const compiled = new WeakMap<GroupsFilterConfig, GroupsFilter>();

export function groupsFilterFor(route: GroupsFilterConfig | undefined, global: GroupsFilterConfig | undefined): GroupsFilter | null {
  const cfg = route ?? global;
  if (cfg === undefined) return null;
  let f = compiled.get(cfg);
  if (f === undefined) compiled.set(cfg, (f = compileGroupsFilter(cfg)));
  return f;
}
