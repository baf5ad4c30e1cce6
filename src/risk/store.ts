// Where profiles and recent authentication failures live: memory (bounded LRU), or Redis when state.redis is
// set, with the memory copy kept as insurance (Redis down → this instance's view, never an error).
import type { Redis } from 'ioredis';
import { isProfile, type Profile } from './profile.ts';

export interface StoreLimits {
  maxSubjects: number;
  decayMs: number;
  failureWindowMs: number;
}

export interface ProfileStore {
  get(key: string): Profile | undefined | Promise<Profile | undefined>;
  set(key: string, p: Profile): void;
  failures(ip: string, nowMs: number): number | Promise<number>;
  recordFailure(ip: string, nowMs: number): void;
  /** Limits may change on reload; stored profiles stay. */
  configure(limits: StoreLimits): void;
}

/** A Map in least-recently-used order, dropping the oldest beyond `max`. */
class Lru<V> {
  readonly #map = new Map<string, V>();
  max: number;
  constructor(max: number) {
    this.max = max;
  }
  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  set(key: string, v: V): void {
    this.#map.delete(key);
    this.#map.set(key, v);
    while (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as string);
  }
  get size(): number {
    return this.#map.size;
  }
}

export class MemoryProfileStore implements ProfileStore {
  readonly #profiles: Lru<Profile>;
  readonly #failures: Lru<{ count: number; since: number }>;
  #limits: StoreLimits;

  constructor(limits: StoreLimits) {
    this.#limits = limits;
    this.#profiles = new Lru(limits.maxSubjects);
    this.#failures = new Lru(limits.maxSubjects);
  }
  configure(limits: StoreLimits): void {
    this.#limits = limits;
    this.#profiles.max = limits.maxSubjects;
    this.#failures.max = limits.maxSubjects;
  }
  get size(): number {
    return this.#profiles.size;
  }
  get(key: string): Profile | undefined {
    return this.#profiles.get(key);
  }
  set(key: string, p: Profile): void {
    this.#profiles.set(key, p);
  }
  failures(ip: string, nowMs: number): number {
    const f = this.#failures.get(ip);
    return f !== undefined && nowMs - f.since <= this.#limits.failureWindowMs ? f.count : 0;
  }
  recordFailure(ip: string, nowMs: number): void {
    const f = this.#failures.get(ip);
    // A fixed window from the first failure, like the Redis counter's expiry.
    if (f === undefined || nowMs - f.since > this.#limits.failureWindowMs) this.#failures.set(ip, { count: 1, since: nowMs });
    else f.count++;
  }
}

const PROFILE_PREFIX = 'ztgw:risk:profile:';
const FAIL_PREFIX = 'ztgw:risk:fail:';

export class RedisProfileStore implements ProfileStore {
  readonly #redis: Redis;
  readonly #memory: MemoryProfileStore;
  #limits: StoreLimits;

  constructor(redis: Redis, limits: StoreLimits) {
    this.#redis = redis;
    this.#limits = limits;
    this.#memory = new MemoryProfileStore(limits);
  }
  configure(limits: StoreLimits): void {
    this.#limits = limits;
    this.#memory.configure(limits);
  }
  get(key: string): Promise<Profile | undefined> {
    return this.#redis.get(PROFILE_PREFIX + key).then(
      (text) => {
        if (text === null) return undefined;
        try {
          const p: unknown = JSON.parse(text);
          return isProfile(p) ? p : undefined;
        } catch {
          return undefined;
        }
      },
      () => this.#memory.get(key),
    );
  }
  set(key: string, p: Profile): void {
    this.#memory.set(key, p);
    this.#redis.set(PROFILE_PREFIX + key, JSON.stringify(p), 'PX', this.#limits.decayMs).catch(() => undefined);
  }
  failures(ip: string, nowMs: number): Promise<number> {
    return this.#redis.get(FAIL_PREFIX + ip).then(
      (v) => Math.max(Number(v ?? 0) || 0, this.#memory.failures(ip, nowMs)),
      () => this.#memory.failures(ip, nowMs),
    );
  }
  recordFailure(ip: string, nowMs: number): void {
    this.#memory.recordFailure(ip, nowMs);
    const key = FAIL_PREFIX + ip;
    this.#redis
      .multi()
      .set(key, '0', 'PX', this.#limits.failureWindowMs, 'NX') // the window starts at the first failure
      .incr(key)
      .exec()
      .catch(() => undefined);
  }
}
