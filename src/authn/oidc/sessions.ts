// Login sessions. Default: the whole session sealed in the cookie (JWE), with an in-memory revocation list
// for logout and back-channel logout. With state.redis: the cookie holds only a random id and the session
// lives in Redis, indexed by IdP sid and subject so a back-channel logout ends them at once everywhere.
import { hash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError } from '../../core/index.ts';
import type { Sealer } from './sealed.ts';
import { CHUNK_CHARS, MAX_CHUNKS, MAX_SESSION_CHARS } from './session-cookies.ts';

export interface Session {
  id: string;
  provider: string;
  sub: string;
  /** The IdP's session id (sid claim), for back-channel logout. */
  sid: string | undefined;
  /** With login.host: the auth host's login this session came from (a fleet logout ends them all). */
  login?: string | undefined;
  claims: Record<string, unknown>;
  createdAt: number; // ms
  lastSeen: number; // ms
  expiresAt: number; // ms, absolute
  refreshToken?: string | undefined;
  accessToken?: string | undefined;
  accessExpiresAt?: number | undefined; // s
  accessRefreshAt?: number | undefined; // s: refresh from then on (before accessExpiresAt)
  idToken?: string | undefined;
}

export interface SessionStore {
  readonly kind: 'cookie' | 'redis';
  read(cookie: string): Promise<Session | undefined>;
  /** Persists the session and returns the cookie value. */
  write(session: Session): Promise<string>;
  destroy(session: Session): Promise<void>;
  /**
   * A live connection's activity keeps its session from going idle: records `atMs` as the session's last
   * use (never moving it back). Cookie store: per instance, honoured by read(); Redis: for every instance.
   */
  touch(session: Session, atMs: number): Promise<void>;
  /** The session's latest known use (ms), or undefined when it has ended (logged out, revoked, gone). */
  seen(session: Session): Promise<number | undefined>;
  /** Ends every session of an IdP session (sid), of a subject, or of an auth-host login (any provider); returns how many were known. */
  revoke(provider: string, by: { sid?: string; sub?: string; before?: number; login?: string }): Promise<number>;
  /** A reload's session secrets: cookies sealed only with a retired secret stop opening at once. */
  useSealer(sealer: Sealer): void;
  /** Releases its timers (the store is no longer used by any running config). */
  dispose(): void;
}

/** Opened cookies kept per store (keyed by the cookie's SHA-256): a live session costs no decryption. */
const OPENED_CACHE_ENTRIES = 10_000;

/**
 * A login whose sealed session does not fit in MAX_CHUNKS cookies: a clear refusal for the user (never a
 * 500), and for the operator's log (the cause) what to change.
 */
function sessionTooLarge(s: Session, chars: number): GatewayError {
  const groups = Array.isArray(s.claims.groups) ? ` (${s.claims.groups.length} groups)` : '';
  const cause = new Error(
    `the session of ${s.provider} subject ${JSON.stringify(s.sub)}${groups} needs ${chars} characters sealed, more than ${MAX_CHUNKS} cookies hold (${MAX_SESSION_CHARS}): ` +
      'configure state.redis (sessions kept server-side, any size), or keep fewer claims (session.keep_claims, claims the rules read)',
  );
  return new GatewayError('GW_ERR_SESSION_TOO_LARGE', 'your identity (its groups and claims) is too large for this gateway\'s session cookies: contact the administrator', { cause });
}

export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Sessions sealed into the cookie. Revocations are remembered until the longest session could expire.
 * `now`: the clock session times are on (default Date.now).
 */
export function createCookieStore(initialSealer: Sealer, maxTtlMs: number, now: () => number = Date.now): SessionStore {
  let sealer = initialSealer;
  const revokedIds = new Map<string, number>();
  const revokedSids = new Map<string, number>();
  const revokedSubsBefore = new Map<string, number>(); // provider|sub → sessions created before this are dead
  const revokedLogins = new Map<string, number>(); // auth-host login id → until
  const sweep = () => {
    const t = now();
    for (const m of [revokedIds, revokedSids, revokedLogins]) for (const [k, until] of m) if (until < t) m.delete(k);
    for (const [k, at] of revokedSubsBefore) if (at + maxTtlMs < t) revokedSubsBefore.delete(k);
  };
  /** Session id → its latest use known here (live touches, and later writes of those sessions). */
  const lastUse = new Map<string, { at: number; until: number }>();
  const timer = setInterval(() => {
    sweep();
    const t = now();
    for (const [k, v] of lastUse) if (v.until < t) lastUse.delete(k);
  }, 60_000);
  timer.unref();
  const revoked = (p: Session): boolean => {
    if (revokedIds.has(p.id)) return true;
    if (p.sid !== undefined && revokedSids.has(`${p.provider}|${p.sid}`)) return true;
    if (p.login !== undefined && revokedLogins.has(p.login)) return true;
    const subCut = revokedSubsBefore.get(`${p.provider}|${p.sub}`);
    return subCut !== undefined && p.createdAt <= subCut;
  };
  // Revocation is checked on every read, cached or not; an entry never outlives its session.
  const opened = new Map<string, Session>();
  async function open(cookie: string): Promise<Session | undefined> {
    const key = hash('sha256', cookie, 'base64url');
    const hit = opened.get(key);
    if (hit !== undefined) {
      if (hit.expiresAt > now()) return hit;
      opened.delete(key);
      return undefined;
    }
    const p = (await sealer.open(cookie, 'session')) as (Session & { pur?: string }) | undefined;
    if (!p || typeof p.id !== 'string' || typeof p.sub !== 'string' || typeof p.expiresAt !== 'number') return undefined;
    delete p.pur;
    if (opened.size >= OPENED_CACHE_ENTRIES) opened.delete(opened.keys().next().value as string);
    opened.set(key, Object.freeze(p));
    return p;
  }

  return {
    kind: 'cookie',
    useSealer(next) {
      sealer = next;
      opened.clear(); // opened under the old key set: open them again with the new one
    },
    dispose() {
      clearInterval(timer);
    },
    async read(cookie) {
      const p = await open(cookie);
      if (!p || revoked(p)) return undefined;
      // Only sessions with a live connection are in lastUse: the common path is one failed lookup.
      const used = lastUse.size > 0 ? lastUse.get(p.id) : undefined;
      return used !== undefined && used.at > p.lastSeen ? { ...p, lastSeen: used.at } : p;
    },
    async touch(session, atMs) {
      const known = lastUse.get(session.id);
      if (known !== undefined && known.at >= atMs) return;
      if (known === undefined && lastUse.size >= OPENED_CACHE_ENTRIES) lastUse.delete(lastUse.keys().next().value as string);
      lastUse.set(session.id, { at: Math.max(atMs, session.lastSeen), until: session.expiresAt });
    },
    async seen(session) {
      if (revoked(session)) return undefined;
      return Math.max(session.lastSeen, lastUse.get(session.id)?.at ?? 0);
    },
    async write(session) {
      const known = lastUse.get(session.id);
      if (known !== undefined && known.at < session.lastSeen) known.at = session.lastSeen;
      let sealed = await sealer.seal(session, 'session');
      if (sealed.length > CHUNK_CHARS) {
        // Large IdP tokens would push the cookie past what browsers keep (~4 KB) and headers past 431 limits:
        // keep the login, drop the tokens (no refresh or pass_token for this session; Redis keeps them).
        const { accessToken: _a, refreshToken: _r, idToken: _i, accessRefreshAt: _t, accessExpiresAt: _e, ...lean } = session;
        sealed = await sealer.seal(lean, 'session');
      }
      // Still more than one cookie: split over MAX_CHUNKS cookies (session-cookies.ts); past that, refused.
      if (sealed.length > MAX_SESSION_CHARS) throw sessionTooLarge(session, sealed.length);
      return sealed;
    },
    async destroy(session) {
      revokedIds.set(session.id, session.expiresAt);
      lastUse.delete(session.id);
    },
    async revoke(provider, by) {
      if (by.sid !== undefined) revokedSids.set(`${provider}|${by.sid}`, now() + maxTtlMs);
      if (by.sub !== undefined) revokedSubsBefore.set(`${provider}|${by.sub}`, by.before ?? now());
      if (by.login !== undefined) revokedLogins.set(by.login, now() + maxTtlMs);
      return 0; // unknown: sealed sessions are not listed anywhere
    },
  };
}

export const SESSION_PREFIX = 'ztgw:sess:';
const PREFIX = SESSION_PREFIX;
/** A live connection's last use of session <id> (ms), beside the record so a touch never rewrites it. */
const USED_PREFIX = `${PREFIX}used:`;

/**
 * Sessions in Redis; the cookie value is the session id sealed (so it cannot be guessed or forged). `now`:
 * the clock session times are on (default Date.now); Redis expires keys on its own.
 */
export function createRedisStore(redis: Redis, initialSealer: Sealer, idleMs: number, now: () => number = Date.now): SessionStore {
  let sealer = initialSealer;
  const ttlMs = (s: Session) => Math.max(1, Math.min(s.expiresAt - now(), idleMs));
  const unavailable = (err: unknown) => new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the session store is unavailable', { cause: err });
  /** The stored session with its latest use (a live connection's touch counts), in one round trip. */
  async function current(id: string): Promise<Session | undefined> {
    let found: Array<string | null>;
    try {
      found = await redis.mget(PREFIX + id, USED_PREFIX + id);
    } catch (err) {
      throw unavailable(err); // fail closed: a session we cannot check is not a session
    }
    const [text, used] = found;
    if (text === null || text === undefined) return undefined;
    const s = JSON.parse(text) as Session;
    const at = Number(used);
    return used !== null && used !== undefined && at > s.lastSeen ? { ...s, lastSeen: at } : s;
  }
  return {
    kind: 'redis',
    useSealer(next) {
      sealer = next;
    },
    dispose() {},
    async read(cookie) {
      const p = await sealer.open(cookie, 'sid');
      if (!p || typeof p.id !== 'string') return undefined;
      return current(p.id);
    },
    async touch(s, atMs) {
      if (atMs <= s.lastSeen) return; // nothing newer than the record itself
      // The record's TTL is extended only if it still exists (PEXPIRE on a missing key does nothing): a
      // touch never brings back a session that was logged out meanwhile.
      const ttl = Math.max(1, Math.min(s.expiresAt - now(), idleMs));
      try {
        await redis.multi().set(USED_PREFIX + s.id, String(atMs), 'PX', ttl).pexpire(PREFIX + s.id, ttl).exec();
      } catch (err) {
        throw unavailable(err);
      }
    },
    async seen(s) {
      return (await current(s.id))?.lastSeen;
    },
    async write(s) {
      try {
        const multi = redis.multi().set(PREFIX + s.id, JSON.stringify(s), 'PX', ttlMs(s));
        const life = Math.max(1, s.expiresAt - now());
        if (s.sid !== undefined) multi.sadd(`${PREFIX}sid:${s.provider}:${s.sid}`, s.id).pexpire(`${PREFIX}sid:${s.provider}:${s.sid}`, life);
        multi.sadd(`${PREFIX}sub:${s.provider}:${s.sub}`, s.id).pexpire(`${PREFIX}sub:${s.provider}:${s.sub}`, life);
        if (s.login !== undefined) multi.sadd(`${PREFIX}login:${s.login}`, s.id).pexpire(`${PREFIX}login:${s.login}`, life);
        await multi.exec();
      } catch (err) {
        throw unavailable(err);
      }
      return sealer.seal({ id: s.id }, 'sid');
    },
    async destroy(s) {
      try {
        await redis.del(PREFIX + s.id, USED_PREFIX + s.id);
      } catch (err) {
        throw unavailable(err);
      }
    },
    async revoke(provider, by) {
      const sets = [
        ...(by.sid !== undefined ? [`${PREFIX}sid:${provider}:${by.sid}`] : []),
        ...(by.sub !== undefined ? [`${PREFIX}sub:${provider}:${by.sub}`] : []),
        ...(by.login !== undefined ? [`${PREFIX}login:${by.login}`] : []),
      ];
      let n = 0;
      try {
        for (const set of sets) {
          const ids = await redis.smembers(set);
          if (ids.length) n += await redis.del(...ids.map((id) => PREFIX + id));
          await redis.del(set);
        }
      } catch (err) {
        throw unavailable(err);
      }
      return n;
    },
  };
}
