// One refresh per session at a time, without polling.
// In this process: single-flight, concurrent callers for one session share one promise.
// Across instances (Redis): the lock key `ztgw:sess:lock:<id>` is taken with SET NX PX (its lifetime
// outlives the IdP call) and released only by its owner, which publishes the session id on a channel in
// the same script. An instance that finds the lock taken waits for that message or for the key's expiry
// (an owner that died), whichever comes first, at most MAX_WAIT_MS, then reads what the owner stored.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

export const LOCK_PREFIX = 'ztgw:sess:lock:';
export const RELEASED_CHANNEL = 'ztgw:sess:lock:released';
/** Compare-and-delete (a lock that expired and was taken by another instance is not ours), then wake the waiters. */
const RELEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]); redis.call('publish', ARGV[2], ARGV[3]); return 1 else return 0 end";
/** The longest a caller waits for another instance's refresh before carrying on without its result. */
export const MAX_WAIT_MS = 5_000;
/** Woken by the key's expiry: a little after it, so the key is really gone. */
const EXPIRY_MARGIN_MS = 5;

export class RefreshLock {
  readonly #redis: Redis | null;
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Session id → wake functions of the callers in this process waiting for another instance. */
  readonly #waiters = new Map<string, Set<() => void>>();
  #subscriber: Redis | undefined;
  #listening: Promise<void> | undefined;
  #disposed = false;

  constructor(redis: Redis | null) {
    this.#redis = redis;
  }

  /**
   * Runs `work` for session `id` once for all concurrent callers in this process. With Redis, `work` runs
   * only while this instance holds the lock (for at most `ttlMs`); when another instance holds it, callers
   * get `afterWait()` once it is released or expired (or MAX_WAIT_MS passed).
   */
  run<T>(id: string, ttlMs: number, work: () => Promise<T>, afterWait: () => Promise<T>): Promise<T> {
    const known = this.#inflight.get(id);
    if (known !== undefined) return known as Promise<T>;
    const run = this.#locked(id, ttlMs, work, afterWait).finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, run);
    return run;
  }

  /** In-process refreshes under way (tests, metrics). */
  get inflight(): number {
    return this.#inflight.size;
  }

  async #locked<T>(id: string, ttlMs: number, work: () => Promise<T>, afterWait: () => Promise<T>): Promise<T> {
    const redis = this.#redis;
    if (redis === null) return work();
    const key = LOCK_PREFIX + id;
    const owner = randomBytes(16).toString('base64url');
    let got: string | null | undefined;
    try {
      got = await redis.set(key, owner, 'PX', ttlMs, 'NX');
    } catch {
      return afterWait(); // Redis is down: nobody can refresh safely; the caller reads what is there
    }
    if (got === null) {
      await this.#waitForRelease(id, key);
      return afterWait();
    }
    try {
      return await work(); // the work stores its result before the lock is released
    } finally {
      await redis.eval(RELEASE, 1, key, owner, RELEASED_CHANNEL, id).catch(() => undefined);
    }
  }

  /** Resolves when the lock on `key` is released (its message), has expired, or after MAX_WAIT_MS. */
  async #waitForRelease(id: string, key: string): Promise<void> {
    const redis = this.#redis as Redis;
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    let timer = setTimeout(wake, MAX_WAIT_MS);
    let waiting = this.#waiters.get(id);
    if (waiting === undefined) this.#waiters.set(id, (waiting = new Set()));
    waiting.add(wake);
    try {
      // Listen first, then look at the key: a release after the look is a message we will get; a release
      // before it shows as a missing key.
      // (Without a subscription, the key's expiry and MAX_WAIT_MS still end the wait.)
      const first = await Promise.race([this.#listen().then(() => 'listening', () => 'deaf'), woken.then(() => 'woken')]);
      if (first === 'woken') return;
      const pttl = await redis.pttl(key).catch(() => MAX_WAIT_MS);
      if (pttl === -2) return; // already released
      if (pttl > 0 && pttl < MAX_WAIT_MS) {
        clearTimeout(timer);
        timer = setTimeout(wake, pttl + EXPIRY_MARGIN_MS); // the owner may have died: its key's expiry ends the wait
      }
      await woken;
    } finally {
      clearTimeout(timer);
      waiting.delete(wake);
      if (waiting.size === 0 && this.#waiters.get(id) === waiting) this.#waiters.delete(id);
    }
  }

  /** One subscriber connection per lock, opened on the first wait (ioredis resubscribes after reconnects). */
  #listen(): Promise<void> {
    if (this.#listening !== undefined) return this.#listening;
    // Disposed (its config was dropped; a late request of that config may still wait): no new connection.
    if (this.#disposed) return Promise.reject(new Error('the refresh lock was disposed'));
    const sub = (this.#subscriber = (this.#redis as Redis).duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false }));
    sub.on('error', () => undefined); // the main connection reports outages
    sub.on('message', (channel: string, id: string) => {
      if (channel !== RELEASED_CHANNEL) return;
      for (const wake of this.#waiters.get(id) ?? []) wake();
    });
    this.#listening = sub.subscribe(RELEASED_CHANNEL).then(
      () => undefined,
      (err: unknown) => {
        this.#listening = undefined; // try again on the next wait
        this.#subscriber = undefined;
        sub.disconnect();
        throw err;
      },
    );
    return this.#listening;
  }

  dispose(): void {
    this.#disposed = true;
    for (const waiting of this.#waiters.values()) for (const wake of waiting) wake();
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
    this.#listening = undefined;
  }
}
