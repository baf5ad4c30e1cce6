// Access-token refresh for a session: one IdP call per session at a time (RefreshLock), the rotated tokens
// stored before the lock is released, and the result reused by requests that still carry the pre-refresh
// cookie (so a rotated refresh token is never spent twice).
import type { Redis } from 'ioredis';
import { GatewayError } from '../../core/index.ts';
import type { OidcClient } from './client.ts';
import { RefreshLock } from './refresh-lock.ts';
import { SESSION_PREFIX, type Session, type SessionStore } from './sessions.ts';

/** A refresh result is reused this long for requests that still carry the pre-refresh cookie. */
const REFRESH_REUSE_MIN_MS = 30_000;
const REFRESH_REUSE_MAX_MS = 600_000;

export class Refresher {
  readonly lock: RefreshLock;
  readonly #redis: Redis | null;
  readonly #store: SessionStore;
  /** Session id → the refresh token that was spent and what it bought (late requests with the old cookie). */
  readonly #refreshed = new Map<string, { spent: string; session: Session; until: number }>();
  /** The clock session and access-token times are on (default Date.now). */
  readonly #now: () => number;

  constructor(redis: Redis | null, store: SessionStore, now: () => number = Date.now) {
    this.#redis = redis;
    this.#store = store;
    this.#now = now;
    this.lock = new RefreshLock(redis);
  }

  /** The session with fresh tokens (or, when another instance's refresh could not be awaited, as it was). */
  refresh(s: Session, client: OidcClient): Promise<Session> {
    const spent = s.refreshToken as string;
    const reuse = this.#refreshed.get(s.id);
    if (reuse && reuse.spent === spent && reuse.until > this.#now()) {
      return Promise.resolve({ ...reuse.session, lastSeen: Math.max(reuse.session.lastSeen, s.lastSeen) });
    }
    // The lock outlives the IdP call (its timeout, with margin).
    return this.lock.run(s.id, client.cfg.timeout * 2 + 5_000, () => this.#spend(s, spent, client), () => this.#stored(s, spent));
  }

  async #spend(s: Session, spent: string, client: OidcClient): Promise<Session> {
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
    const now = this.#now();
    for (const [id, r] of this.#refreshed) if (r.until <= now) this.#refreshed.delete(id);
    const until = Math.min(REFRESH_REUSE_MAX_MS, Math.max(REFRESH_REUSE_MIN_MS, (t.accessExpiresAt ?? 0) * 1000 - now));
    this.#refreshed.set(s.id, { spent, session: next, until: now + until });
    return next;
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
