// What the relying party keeps across config reloads. A reload builds a new relying party (its routes and
// authenticators), but its stateful parts (session stores with their revocations, refresh locks, IdP
// clients with their discovery and JWKS caches) are looked up here by a checksum of the config they were
// built from: an unchanged config reuses them, a dropped one is disposed once the new config is running.
import { createHash } from 'node:crypto';
import type { RemoteKeySource } from '../jwks.ts';
import type { OidcClient } from './client.ts';
import type { Refresher } from './refresh.ts';
import type { Identity } from '../../core/index.ts';
import type { Session, SessionStore } from './sessions.ts';

/** A part that holds resources (timers, connections) to release when no running config uses it. */
export interface Part {
  dispose(): void;
}

/** SHA-256 of the JSON of `value`: a checksum of config (which may hold secrets: only the digest is kept). */
export function checksum(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url');
}

/** Parts are disposed this long after the config that used them was replaced (its requests finish first). */
export const DISPOSE_GRACE_MS = 30_000;

/** Parts of one kind by checksum. A part dropped by a reload is disposed after a grace period. */
export class PartCache<T extends Part> {
  readonly #parts = new Map<string, { part: T; timer: NodeJS.Timeout | undefined }>();

  /** The part built from config with this checksum: the kept one, or a new one from `make`. */
  take(key: string, make: () => T): T {
    const known = this.#parts.get(key);
    if (known !== undefined) {
      clearTimeout(known.timer); // dropped by an earlier reload, wanted again
      known.timer = undefined;
      return known.part;
    }
    const part = make();
    this.#parts.set(key, { part, timer: undefined });
    return part;
  }

  has(key: string): boolean {
    return this.#parts.has(key);
  }

  get(key: string): T | undefined {
    return this.#parts.get(key)?.part;
  }

  get size(): number {
    return this.#parts.size;
  }

  /** Parts whose key is not in `used` are disposed after `graceMs` (at once when 0). */
  keepOnly(used: ReadonlySet<string>, graceMs: number): void {
    for (const [key, entry] of this.#parts) {
      if (used.has(key) || entry.timer !== undefined) continue;
      const drop = () => {
        if (this.#parts.get(key) !== entry) return;
        this.#parts.delete(key);
        entry.part.dispose();
      };
      if (graceMs <= 0) drop();
      else (entry.timer = setTimeout(drop, graceMs)).unref();
    }
  }

  disposeAll(): void {
    for (const entry of this.#parts.values()) {
      clearTimeout(entry.timer);
      entry.part.dispose();
    }
    this.#parts.clear();
  }
}

/** The checksums of the parts one relying party uses (recorded by createRelyingParty). */
export interface PartKeys {
  readonly sessions: ReadonlySet<string>;
  readonly providers: ReadonlySet<string>;
  /** The claims its new sessions keep (session-claims.ts). */
  readonly claims?: ReadonlySet<string>;
}

/** Typed state that outlives reloads: one per gateway process. */
export class RpState {
  /** Session stores (and their refreshers) by a checksum of the store kind and session lifetimes. */
  readonly sessions = new PartCache<SessionParts>();
  /** IdP clients (discovery, JWKS) by a checksum of the provider's config and the files it names. */
  readonly providers = new PartCache<ProviderParts>();
  /** Login transaction states already used: a replayed callback is refused, across reloads too. */
  readonly usedStates = new Map<string, number>();
  /** Logout-token ids already seen (provider|jti → until, ms), when no Redis shares them. */
  readonly seenLogoutTokens = new Map<string, number>();
  /** login.host: one-time handoff codes (SHA-256 of the code → record), when no Redis shares them. */
  readonly handoffCodes = new Map<string, { text: string; exp: number }>();
  /**
   * The session each session identity was made from: a live connection admitted by it is tied to that
   * session (logout, idle, ttl) whatever reload came since. Weak: gone with the identity.
   */
  readonly sessionOf = new WeakMap<Identity, Session>();
  readonly #keys = new WeakMap<object, PartKeys>();
  /** The claims the running config's sessions keep (undefined before the first commit). */
  keptClaims: ReadonlySet<string> | undefined;

  /** Records which parts `rp` uses, for commit(). */
  bind(rp: object, keys: PartKeys): void {
    this.#keys.set(rp, keys);
  }

  /** `rp` (null: no relying party) is the running one now: parts it does not use are disposed after a grace period. */
  commit(rp: object | null, graceMs = DISPOSE_GRACE_MS): void {
    const keys = rp === null ? undefined : this.#keys.get(rp);
    if (keys?.claims !== undefined) this.keptClaims = keys.claims;
    this.sessions.keepOnly(keys?.sessions ?? new Set(), graceMs);
    this.providers.keepOnly(keys?.providers ?? new Set(), graceMs);
  }

  /** Gateway stop: everything is released now. */
  dispose(): void {
    this.sessions.disposeAll();
    this.providers.disposeAll();
  }
}

export interface ProviderParts extends Part {
  readonly client: OidcClient;
  /** The IdP's signing keys (for logout tokens), from its discovered jwks_uri; undefined when it has none. */
  keys(): Promise<RemoteKeySource | undefined>;
}

export interface SessionParts extends Part {
  readonly store: SessionStore;
  readonly refresher: Refresher;
}
