// The access state every protected request is checked against: suspended subjects, revoked token ids,
// revoked devices, subjects whose sessions were ended, and just-in-time grants. The request path reads a
// local in-memory copy (Map lookups only). With state.redis the copy mirrors Redis: writes go to Redis and
// are announced on a pub/sub channel, every instance reloads on the announcement, and a 1 s version poll
// catches anything pub/sub missed. A copy not confirmed for max_staleness is no longer trusted (fresh()).
import type { Redis } from 'ioredis';
import type { Logger } from '../audit/index.ts';
import { ENDED_GRANT_RETENTION_MS, grantEnd, grantState, KINDS, type Collections, type Grant, type Kind, type Suspension } from './access-types.ts';

const PREFIX = 'ztgw:state:v1:';
const VERSION_KEY = `${PREFIX}version`;
export const CHANGES_CHANNEL = `${PREFIX}changes`;
const hashKey = (kind: Kind) => `${PREFIX}${kind}`;

export interface Change {
  kind: Kind;
  key: string;
  /** null removes the record. */
  value: object | null;
  /**
   * Compare-and-set: the record this change was decided on. If the stored record is no longer that one
   * (another instance changed it meanwhile), nothing is written and write() rejects with StaleChangeError.
   */
  expected?: object;
}

/** A compare-and-set change lost the race: the record changed since it was read. */
export class StaleChangeError extends Error {}

// KEYS: the hash, the version counter; ARGV: field, expected JSON, new JSON. 1 written, 0 stale.
const COMPARE_AND_SET = `if redis.call('hget', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[3])
redis.call('incr', KEYS[2])
return 1`;

export interface AccessStoreOptions {
  redis: Redis | null;
  log: Logger;
  maxStalenessMs: number;
  /** The clock (tests of grant expiry replace it). */
  now?: () => number;
  pollMs?: number;
}

export interface AccessStore {
  readonly kind: 'memory' | 'redis';
  /** Resolves after the first load from Redis (or at once in memory); never rejects. */
  readonly ready: Promise<boolean>;
  now(): number;
  /** False when the copy has not been confirmed against Redis for max_staleness: fail closed. */
  fresh(): boolean;
  syncedAt(): number;
  suspension(subject: string): Suspension | undefined;
  tokenRevoked(jti: string): boolean;
  /** How many devices are revoked: the request path resolves the caller's device only when this is > 0. */
  readonly revokedDevices: number;
  deviceRevoked(id: string): boolean;
  hasGrant(provider: string, subject: string, grant: string, nowMs: number): boolean;
  activeGrantCount(): number;
  get<K extends Kind>(kind: K, key: string): ReturnType<Collections[K]['get']>;
  list<K extends Kind>(kind: K): ReadonlyMap<string, NonNullable<ReturnType<Collections[K]['get']>>>;
  /** Writes through (to Redis when configured) and resolves once this instance's copy has the change. */
  write(changes: readonly Change[]): Promise<void>;
  /** Called on every instance when a subject's sessions are ended (sealed-cookie sessions live per instance). */
  onSessionsRevoked(listener: (subject: string, atMs: number) => void): void;
  /** Called (per instance) when an active grant reaches its end. */
  onGrantExpired(listener: (grant: Grant) => void): void;
  /**
   * Called on every instance after a new copy is installed (a local write, a change announced by another
   * instance, or one the poll found): live connections are judged again against it.
   */
  onChange(listener: () => void): void;
  close(): Promise<void>;
}

function emptyCollections(): Collections {
  return { suspended: new Map(), tokens: new Map(), devices: new Map(), sessions: new Map(), grants: new Map() };
}

export function createAccessStore(o: AccessStoreOptions): AccessStore {
  const now = o.now ?? Date.now;
  const redis = o.redis;
  let data = emptyCollections();
  /** provider|subject → grant name → active until (ms). */
  let active = new Map<string, Map<string, number>>();
  let version: string | null = null;
  let synced = redis ? 0 : Number.POSITIVE_INFINITY;
  const sessionListeners: Array<(subject: string, atMs: number) => void> = [];
  const expiryListeners: Array<(grant: Grant) => void> = [];
  const changeListeners: Array<() => void> = [];
  const watched = new Map<string, number>(); // grant id → expiresAt, for the expiry announcement
  let closed = false;

  const index = () => {
    const next = new Map<string, Map<string, number>>();
    const t = now();
    for (const g of data.grants.values()) {
      if (grantState(g, t) !== 'active' || g.expiresAt === undefined) continue;
      const k = `${g.provider}|${g.subject}`;
      let m = next.get(k);
      if (!m) next.set(k, (m = new Map()));
      m.set(g.grant, Math.max(m.get(g.grant) ?? 0, g.expiresAt));
      if (!watched.has(g.id)) watched.set(g.id, g.expiresAt);
    }
    active = next;
  };

  /** Swaps in a new copy; announces sessions revocations this instance has not applied yet. */
  const install = (next: Collections) => {
    const before = data.sessions;
    data = next;
    index();
    for (const [subject, r] of next.sessions) if (before.get(subject)?.at !== r.at) for (const l of sessionListeners) l(subject, r.at);
    for (const l of changeListeners) l();
  };

  const expired = (): Change[] => {
    const t = now();
    const out: Change[] = [];
    for (const [k, r] of data.tokens) if (r.until <= t) out.push({ kind: 'tokens', key: k, value: null });
    for (const [k, g] of data.grants) if (grantEnd(g) + ENDED_GRANT_RETENTION_MS <= t) out.push({ kind: 'grants', key: k, value: null });
    return out;
  };

  const applyLocal = (changes: readonly Change[]) => {
    const next: Collections = {
      suspended: new Map(data.suspended),
      tokens: new Map(data.tokens),
      devices: new Map(data.devices),
      sessions: new Map(data.sessions),
      grants: new Map(data.grants),
    };
    for (const c of changes) {
      const m = next[c.kind] as Map<string, object>;
      if (c.value === null) m.delete(c.key);
      else m.set(c.key, c.value);
    }
    install(next);
  };

  let loading: Promise<void> | null = null;
  let again = false;
  /** One full reload at a time; a request for another while one runs is coalesced into one more. */
  const reload = (): Promise<void> => {
    if (!redis) return Promise.resolve();
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        const m = redis.multi();
        for (const k of KINDS) m.hgetall(hashKey(k));
        m.get(VERSION_KEY);
        const results = await m.exec();
        if (!results) throw new Error('redis transaction aborted');
        const next = emptyCollections();
        KINDS.forEach((k, i) => {
          const [err, hash] = results[i] as [Error | null, Record<string, string>];
          if (err) throw err;
          const target = next[k] as Map<string, object>;
          for (const [key, text] of Object.entries(hash)) {
            try {
              target.set(key, JSON.parse(text) as object);
            } catch {
              o.log.warn({ kind: k }, 'access state: unreadable record ignored');
            }
          }
        });
        version = (results[KINDS.length]?.[1] as string | null) ?? null;
        install(next);
        synced = now();
      } while (again);
    })().finally(() => {
      loading = null;
    });
    return loading;
  };

  const timers: NodeJS.Timeout[] = [];
  let subscriber: Redis | null = null;
  let ready: Promise<boolean> = Promise.resolve(true);
  let down = false;
  const failed = (err: unknown) => {
    if (!down) o.log.warn({ err: (err as Error).message }, 'access state: redis unreachable; the local copy ages');
    down = true;
  };
  const ok = () => {
    if (down) o.log.warn('access state: redis reachable again');
    down = false;
  };

  if (redis) {
    subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false });
    subscriber.on('error', () => undefined); // the poll reports the outage once
    subscriber.on('ready', () => {
      subscriber?.subscribe(CHANGES_CHANNEL).catch(() => undefined);
      reload().then(ok, failed); // anything published while we were away
    });
    subscriber.on('message', () => void reload().then(ok, failed));
    const pollMs = o.pollMs ?? Math.max(100, Math.min(1000, Math.floor(o.maxStalenessMs / 3)));
    const poll = async () => {
      const v = await redis.get(VERSION_KEY);
      if (v !== version) await reload();
      else synced = now();
    };
    const t = setInterval(() => void poll().then(ok, failed), pollMs);
    t.unref();
    timers.push(t);
    ready = new Promise<boolean>((resolve) => {
      const deadline = setTimeout(() => resolve(false), 3000);
      deadline.unref();
      const attempt = (n: number): void => {
        if (closed) return resolve(false);
        reload().then(
          () => (clearTimeout(deadline), resolve(true)),
          () => (n < 30 ? void setTimeout(() => attempt(n + 1), 100).unref() : resolve(false)),
        );
      };
      attempt(0);
    });
  }

  // Expiry: index() drops grants whose time is up; the sweep re-indexes and announces them once.
  const sweep = setInterval(() => {
    const t = now();
    let changed = false;
    for (const [id, until] of watched) {
      if (until > t) continue;
      watched.delete(id);
      changed = true;
      const g = data.grants.get(id);
      if (g && grantState(g, t) === 'expired') for (const l of expiryListeners) l(g);
    }
    if (changed) index();
    if (!redis) {
      const old = expired();
      if (old.length) applyLocal(old);
    }
  }, 250);
  sweep.unref();
  timers.push(sweep);

  return {
    kind: redis ? 'redis' : 'memory',
    ready,
    now,
    fresh: () => now() - synced <= o.maxStalenessMs,
    syncedAt: () => synced,
    suspension: (subject) => data.suspended.get(subject),
    tokenRevoked: (jti) => data.tokens.has(jti),
    get revokedDevices() {
      return data.devices.size;
    },
    deviceRevoked: (id) => data.devices.has(id),
    hasGrant(provider, subject, grant, nowMs) {
      const until = active.get(`${provider}|${subject}`)?.get(grant);
      return until !== undefined && nowMs < until;
    },
    activeGrantCount() {
      const t = now();
      let n = 0;
      for (const g of data.grants.values()) if (grantState(g, t) === 'active') n++;
      return n;
    },
    get: (kind, key) => data[kind].get(key) as never,
    list: (kind) => data[kind] as never,
    async write(changes) {
      const all = [...changes, ...expired().filter((e) => !changes.some((c) => c.kind === e.kind && c.key === e.key))];
      if (!redis) {
        // One process: nothing can change a record between the caller's read and this write.
        return applyLocal(all);
      }
      for (const c of changes) {
        if (c.expected === undefined || c.value === null) continue;
        const written = await redis.eval(COMPARE_AND_SET, 2, hashKey(c.kind), VERSION_KEY, c.key, JSON.stringify(c.expected), JSON.stringify(c.value));
        if (written !== 1) {
          await reload().catch(() => undefined);
          throw new StaleChangeError(`${c.kind} ${c.key} changed meanwhile`);
        }
      }
      const m = redis.multi();
      for (const c of all) {
        if (c.expected !== undefined && c.value !== null) continue; // written above, compared
        if (c.value === null) m.hdel(hashKey(c.kind), c.key);
        else m.hset(hashKey(c.kind), c.key, JSON.stringify(c.value));
      }
      m.incr(VERSION_KEY);
      const results = await m.exec();
      const failure = results?.find(([err]) => err !== null)?.[0];
      if (!results || failure) throw failure ?? new Error('redis transaction aborted');
      // Written: from here on a failure must not report the change as lost. Instances that miss the
      // announcement see the new version on their next poll; this one applies the change itself if need be.
      await redis.publish(CHANGES_CHANNEL, changes[0]?.kind ?? 'all').catch(() => undefined);
      await reload().catch(() => applyLocal(all));
    },
    onSessionsRevoked: (l) => void sessionListeners.push(l),
    onGrantExpired: (l) => void expiryListeners.push(l),
    onChange: (l) => void changeListeners.push(l),
    async close() {
      closed = true;
      for (const t of timers) clearInterval(t);
      subscriber?.disconnect();
    },
  };
}
