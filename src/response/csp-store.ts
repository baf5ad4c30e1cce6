// CSP violations aggregated per route, directive and blocked source, plus the inline hashes learned from
// the pages of `learn: true` routes. One store per process: it outlives reloads. Bounded everywhere: at most
// MAX_KEYS keys per route (the least recently seen is dropped) and MAX_TOTAL_KEYS over all routes,
// MAX_CLIENTS distinct addresses remembered per key, MAX_HASHES learned hashes per route and directive, and
// a per-IP report budget.
import type { CspViolation } from './csp-report.ts';

export const MAX_KEYS = 1000;
/** Distinct client addresses remembered per key: `clients` counts up to this. */
export const MAX_CLIENTS = 100;
/** Keys over all routes: a report that would add one more drops the least recently seen key of its route. */
export const MAX_TOTAL_KEYS = 50_000;
export const MAX_HASHES = 500;
/** Pages hashed per `learn: true` route (per process), and bytes read of each. */
export const LEARN_PAGES = 50;
export const LEARN_PAGE_BYTES = 1 << 20;
/** Reports one client address may send per minute; beyond that 429. */
export const REPORTS_PER_MINUTE = 240;
const LOG_EVERY_MS = 60_000;
const MAX_TRACKED_IPS = 10_000;

interface Entry {
  readonly directive: string;
  readonly blocked: string;
  count: number;
  readonly clients: Set<string>;
  readonly first: number;
  last: number;
  samplePath: string;
  loggedAt: number;
}

export interface CspViolationView {
  directive: string;
  blocked: string;
  count: number;
  clients: number;
  first_seen: string;
  last_seen: string;
  sample_path: string;
}

export type LearnedDirective = 'script-src' | 'style-src';

export interface CspStoreOptions {
  /** Counts zt_csp_violations_total{route,directive}. */
  count?: (route: string, directive: string) => void;
  /** A pino-style logger: once per key per minute, and each newly learned hash. */
  log?: (fields: Record<string, unknown>, msg: string) => void;
  now?: () => number;
}

export class CspStore {
  readonly #routes = new Map<string, Map<string, Entry>>();
  readonly #learned = new Map<string, Record<LearnedDirective, Set<string>>>();
  readonly #pages = new Map<string, number>();
  readonly #budget = new Map<string, number>();
  #keys = 0;
  #window = 0;
  readonly #o: CspStoreOptions;
  readonly #now: () => number;

  constructor(options: CspStoreOptions = {}) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Spends one report of this address's budget; false: over it (429). */
  allowReport(ip: string): boolean {
    const window = Math.floor(this.#now() / 60_000);
    if (window !== this.#window || this.#budget.size >= MAX_TRACKED_IPS) {
      this.#window = window;
      this.#budget.clear();
    }
    const used = (this.#budget.get(ip) ?? 0) + 1;
    this.#budget.set(ip, used);
    return used <= REPORTS_PER_MINUTE;
  }

  add(route: string, v: CspViolation, client: string): void {
    const now = this.#now();
    let keys = this.#routes.get(route);
    if (keys === undefined) this.#routes.set(route, (keys = new Map()));
    const id = `${v.directive} ${v.blocked}`;
    let e = keys.get(id);
    if (e === undefined) {
      if (keys.size >= MAX_KEYS || (this.#keys >= MAX_TOTAL_KEYS && keys.size > 0)) {
        keys.delete(keys.keys().next().value as string); // least recently seen
        this.#keys--;
      }
      if (this.#keys >= MAX_TOTAL_KEYS) {
        this.#o.count?.(route, v.directive); // counted, not aggregated: the store is full of other routes' keys
        return;
      }
      this.#keys++;
      e = { directive: v.directive, blocked: v.blocked, count: 0, clients: new Set(), first: now, last: now, samplePath: v.documentPath, loggedAt: -Infinity };
    } else keys.delete(id); // re-inserted below: Map order is least → most recently seen
    keys.set(id, e);
    e.count++;
    e.last = now;
    if (v.documentPath !== '') e.samplePath = v.documentPath;
    if (e.clients.size < MAX_CLIENTS) e.clients.add(client);
    this.#o.count?.(route, v.directive);
    if (now - e.loggedAt >= LOG_EVERY_MS) {
      e.loggedAt = now;
      this.#o.log?.({ csp: { route, ...view(e) } }, 'csp violation');
    }
  }

  /** The aggregate of one route, or of every route; most recently seen first. */
  violations(route?: string): Array<{ route: string; violations: CspViolationView[]; learned: Record<LearnedDirective, string[]> }> {
    const names = route === undefined ? [...new Set([...this.#routes.keys(), ...this.#learned.keys()])].sort() : [route];
    return names.map((name) => {
      const learned = this.#learned.get(name);
      return {
        route: name,
        violations: [...(this.#routes.get(name)?.values() ?? [])].reverse().map(view),
        learned: { 'script-src': [...(learned?.['script-src'] ?? [])], 'style-src': [...(learned?.['style-src'] ?? [])] },
      };
    });
  }

  /** Whether one more page of this route may be hashed (the first LEARN_PAGES pages are). */
  takeLearnPage(route: string): boolean {
    const n = this.#pages.get(route) ?? 0;
    if (n >= LEARN_PAGES) return false;
    this.#pages.set(route, n + 1);
    return true;
  }

  learn(route: string, directive: LearnedDirective, hash: string): void {
    let sets = this.#learned.get(route);
    if (sets === undefined) this.#learned.set(route, (sets = { 'script-src': new Set(), 'style-src': new Set() }));
    const set = sets[directive];
    if (set.has(hash) || set.size >= MAX_HASHES) return;
    set.add(hash);
    this.#o.log?.({ csp_learned: { route, directive, hash } }, 'csp inline hash');
  }
}

function view(e: Entry): CspViolationView {
  return {
    directive: e.directive,
    blocked: e.blocked,
    count: e.count,
    clients: e.clients.size,
    first_seen: new Date(e.first).toISOString(),
    last_seen: new Date(e.last).toISOString(),
    sample_path: e.samplePath,
  };
}
