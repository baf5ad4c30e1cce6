// The refresh lock against a real Redis: single-flight in one process, one holder across instances (two
// RefreshLocks with their own connections), waiters woken by the release message or by the lock key's
// expiry (an owner that died), never by polling.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { LOCK_PREFIX, MAX_WAIT_MS, RefreshLock } from '../../src/authn/oidc/refresh-lock.ts';
import { redisForTests, type RedisServer } from '../helpers/redis.ts';
import { sleep } from '../helpers/wait.ts';

const newId = () => randomBytes(12).toString('base64url');

describe('refresh lock in one process (no Redis)', () => {
  it('concurrent refreshes of one session share one run; another session runs on its own', async () => {
    const lock = new RefreshLock(null);
    let runs = 0;
    const work = async () => {
      const n = ++runs;
      await sleep(50);
      return `result-${n}`;
    };
    const never = () => Promise.reject(new Error('no other instance without Redis'));
    const results = await Promise.all([...Array.from({ length: 8 }, () => lock.run('s1', 1000, work, never)), lock.run('s2', 1000, work, never)]);
    expect(runs).toBe(2);
    expect(new Set(results.slice(0, 8)).size).toBe(1);
    expect(results[8]).not.toBe(results[0]);
    expect(lock.inflight).toBe(0);
    // Once settled, the next refresh runs again (it is single-flight, not a cache).
    await lock.run('s1', 1000, work, never);
    expect(runs).toBe(3);
  });

  it('a failed run fails every caller sharing it, and the next one runs again', async () => {
    const lock = new RefreshLock(null);
    let runs = 0;
    const failing = async () => {
      runs++;
      await sleep(20);
      throw new Error('idp said no');
    };
    const settled = await Promise.allSettled(Array.from({ length: 3 }, () => lock.run('s', 1000, failing, failing)));
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(runs).toBe(1);
    await lock.run('s', 1000, failing, failing).catch(() => undefined);
    expect(runs).toBe(2);
  });
});

describe('refresh lock across instances (Redis)', () => {
  let server: RedisServer | undefined;
  let url: string | undefined;
  const connections: Redis[] = [];
  const locks: RefreshLock[] = [];
  const connect = () => {
    const r = new Redis(url as string, { maxRetriesPerRequest: 1 });
    connections.push(r);
    return r;
  };
  /** An "instance": its own connection and lock. */
  const instance = () => {
    const redis = connect();
    const lock = new RefreshLock(redis);
    locks.push(lock);
    return { redis, lock };
  };

  beforeAll(async () => {
    ({ url, server } = await redisForTests());
  });

  afterAll(async () => {
    for (const l of locks) l.dispose();
    for (const c of connections) c.disconnect();
    await server?.stop();
  });

  it('one instance refreshes; the other waits for its release message (not a timeout) and reads the result', async (ctx) => {
    if (!url) return ctx.skip();
    const a = instance();
    const b = instance();
    const id = newId();
    let runs = 0;
    let stored = 'old';
    const work = async () => {
      runs++;
      await sleep(300);
      stored = 'new';
      return 'refreshed';
    };
    const read = async () => `read:${stored}`;
    const startedAt = Date.now();
    const first = a.lock.run(id, 10_000, work, read);
    await sleep(30); // a holds the lock now
    const waiting = Array.from({ length: 4 }, () => b.lock.run(id, 10_000, work, read));
    const results = await Promise.all([first, ...waiting]);
    const took = Date.now() - startedAt;
    expect(runs).toBe(1);
    expect(results).toEqual(['refreshed', 'read:new', 'read:new', 'read:new', 'read:new']);
    expect(took).toBeLessThan(1500); // woken by the message, far from MAX_WAIT_MS
    expect(await a.redis.exists(LOCK_PREFIX + id)).toBe(0);
  });

  it('a lock whose owner died wakes its waiters at the key expiry', async (ctx) => {
    if (!url) return ctx.skip();
    const { redis, lock } = instance();
    const id = newId();
    await redis.set(LOCK_PREFIX + id, 'a-dead-instance', 'PX', 400);
    const startedAt = Date.now();
    let ran = false;
    const result = await lock.run(id, 10_000, async () => ((ran = true), 'mine'), async () => 'after-wait');
    const took = Date.now() - startedAt;
    expect(result).toBe('after-wait');
    expect(ran).toBe(false);
    expect(took).toBeGreaterThanOrEqual(350);
    expect(took).toBeLessThan(MAX_WAIT_MS - 1000);
  });

  it('a lock held longer than MAX_WAIT_MS: the waiter carries on after MAX_WAIT_MS', async (ctx) => {
    if (!url) return ctx.skip();
    const { redis, lock } = instance();
    const id = newId();
    await redis.set(LOCK_PREFIX + id, 'slow-instance', 'PX', 60_000);
    const startedAt = Date.now();
    expect(await lock.run(id, 10_000, async () => 'mine', async () => 'after-wait')).toBe('after-wait');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(MAX_WAIT_MS - 50);
    await redis.del(LOCK_PREFIX + id);
  }, 15_000);

  it('only the owner releases: a lock that expired and was taken by another instance is left alone', async (ctx) => {
    if (!url) return ctx.skip();
    const { redis, lock } = instance();
    const id = newId();
    const result = await lock.run(
      id,
      100,
      async () => {
        await sleep(200); // our lock expires meanwhile, and another instance takes it
        await redis.set(LOCK_PREFIX + id, 'another-instance', 'PX', 10_000);
        return 'done';
      },
      async () => 'after-wait',
    );
    expect(result).toBe('done');
    expect(await redis.get(LOCK_PREFIX + id)).toBe('another-instance');
    await redis.del(LOCK_PREFIX + id);
  });
});
