// Access-token refresh for a session: one IdP call per session at a time (RefreshLock), the rotated tokens
// stored before the lock is released, and every request that still carries a cookie from before one or more
// refreshes resolved to the session's current tokens (so a rotated refresh token is never presented twice).
import type { Redis } from 'ioredis';
import { GatewayError } from '../../core/index.ts';
import type { OidcClient } from './client.ts';
import { RefreshLock } from './refresh-lock.ts';
import { SESSION_PREFIX, type Session, type SessionStore } from './sessions.ts';

/** Sessions whose refresh lineage is remembered (oldest dropped first past this). */
const LINEAGE_ENTRIES = 100_000;
/** Refresh this long before the access token expires (unless the IdP said when). */
export const REFRESH_EARLY_S = 60;

/** When the session's access token is due for a refresh (s), or undefined: never (no expiry known). */
export function refreshDueAt(s: Session): number | undefined {
  return s.accessRefreshAt ?? (s.accessExpiresAt === undefined ? undefined : s.accessExpiresAt - REFRESH_EARLY_S);
}

/** What a session's refreshes spent and bought: its refresh tokens already presented, and its latest state. */
interface Lineage {
  readonly spent: Set<string>;
  session: Session;
}

export class Refresher {
  readonly lock: RefreshLock;
  readonly #redis: Redis | null;
  readonly #store: SessionStore;
  /**
   * Session id → every refresh token this process presented for it, and the session its last refresh
   * made, for the session's whole lifetime: a request that still carries a cookie from one, two or more
   * refreshes back resolves to the current tokens, so a rotated refresh token is never presented twice
   * (the IdP's reuse detection would revoke the whole grant). With Redis the record is the current state
   * anyway; this covers sealed cookies, which every old tab and retry keeps.
   */
  readonly #lineage = new Map<string, Lineage>();
  #swept = 0;
  /** The clock session and access-token times are on (default Date.now). */
  readonly #now: () => number;

  constructor(redis: Redis | null, store: SessionStore, now: () => number = Date.now) {
    this.#redis = redis;
    this.#store = store;
    this.#now = now;
    this.lock = new RefreshLock(redis);
  }

  /**
   * The session as its latest refresh left it, when `s` carries a refresh token that was already spent;
   * else `s` itself.
   */
  current(s: Session): Session {
    const known = s.refreshToken === undefined ? undefined : this.#lineage.get(s.id);
    if (known === undefined || !known.spent.has(s.refreshToken as string)) return s;
    return { ...known.session, lastSeen: Math.max(known.session.lastSeen, s.lastSeen) };
  }

  /**
   * The session with fresh tokens (or, when another instance's refresh could not be awaited, as it was).
   * A session whose refresh token was already spent here is served from its latest state (refreshed again
   * only if that is due, with its own, unspent, refresh token).
   */
  refresh(s: Session, client: OidcClient): Promise<Session> {
    const cur = this.current(s);
    if (cur !== s) {
      const due = refreshDueAt(cur);
      if (cur.refreshToken === undefined || due === undefined || due > this.#now() / 1000) return Promise.resolve(cur);
    }
    const spent = cur.refreshToken as string;
    // The lock outlives the IdP call (its timeout, with margin).
    return this.lock.run(cur.id, client.cfg.timeout * 2 + 5_000, () => this.#spend(cur, spent, client), () => this.#stored(cur, spent));
  }

  async #spend(s: Session, spent: string, client: OidcClient): Promise<Session> {
    const known = this.#lineage.get(s.id);
    if (known?.spent.has(spent)) return { ...known.session, lastSeen: Math.max(known.session.lastSeen, s.lastSeen) }; // never twice
    const t = await client.refresh(spent);
    // Refresh-token rotation: keep the new one when the IdP issues it.
    const next: Session = {
      ...s,
      accessToken: t.accessToken ?? s.accessToken,
      refreshToken: t.refreshToken ?? s.refreshToken,
      accessExpiresAt: t.accessExpiresAt,
      accessRefreshAt: t.accessRefreshAt,
      ...(t.claimsRechecked ? { claims: t.claims } : {}),
    };
    if (this.#redis !== null) await this.#store.write(next); // visible to the other instances before unlocking
    this.#remember(s.id, spent, next);
    return next;
  }

  #remember(id: string, spent: string, next: Session): void {
    const now = this.#now();
    if (now - this.#swept > 60_000) {
      this.#swept = now;
      for (const [k, l] of this.#lineage) if (l.session.expiresAt <= now) this.#lineage.delete(k);
    }
    let l = this.#lineage.get(id);
    if (l === undefined) {
      if (this.#lineage.size >= LINEAGE_ENTRIES) this.#lineage.delete(this.#lineage.keys().next().value as string);
      this.#lineage.set(id, (l = { spent: new Set(), session: next }));
    }
    // A token the IdP did not rotate stays usable: only a token that was replaced counts as spent.
    if (next.refreshToken !== spent) l.spent.add(spent);
    l.session = next;
  }

  /** After another instance's refresh: what it stored, the session unchanged if it stored nothing new. */
  async #stored(s: Session, spent: string): Promise<Session> {
    const text = await (this.#redis as Redis).get(SESSION_PREFIX + s.id).catch(() => undefined);
    if (text === undefined) return s; // Redis hiccup: carry on with the session as it is
    if (text === null) throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'the session ended');
    const fresh = JSON.parse(text) as Session;
    return fresh.refreshToken !== spent || fresh.accessExpiresAt !== s.accessExpiresAt ? fresh : s;
  }

  dispose(): void {
    this.lock.dispose();
  }
}
