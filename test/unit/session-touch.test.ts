// A live connection's use of its session (SessionStore.touch/seen): the cookie store remembers it per instance
// and its cookie check honours it; the Redis store records it for every instance beside the record, never
// rewriting the record and never bringing back a session that was logged out. Real Redis.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSealer } from '../../src/authn/oidc/sealed.ts';
import { createCookieStore, createRedisStore, newSessionId, SESSION_PREFIX, type Session } from '../../src/authn/oidc/sessions.ts';
import { sessionEndCovers } from '../../src/pipeline/live-checks.ts';
import { redisForTests, type RedisServer } from '../helpers/redis.ts';

const sealer = createSealer(['a-session-secret-of-at-least-32-characters!!']);
const IDLE_MS = 600_000;

function session(extra: Partial<Session> = {}): Session {
  const now = Date.now();
  return { id: newSessionId(), provider: 'corp', sub: 'alice', sid: 'sid-1', claims: { groups: [] }, createdAt: now, lastSeen: now, expiresAt: now + 3_600_000, ...extra };
}

describe('cookie store: touches by live connections', () => {
  it('read() and seen() honour a touch; a later write of that session moves it on; destroy ends it', async () => {
    const store = createCookieStore(sealer, 3_600_000);
    const s = session({ lastSeen: Date.now() - 500_000 });
    const cookie = await store.write(s);
    expect((await store.read(cookie))?.lastSeen).toBe(s.lastSeen);
    const at = Date.now();
    await store.touch(s, at);
    expect((await store.read(cookie))?.lastSeen).toBe(at); // the old cookie is not idle any more
    expect(await store.seen(s)).toBe(at);
    await store.touch(s, at - 1000); // never moves back
    expect(await store.seen(s)).toBe(at);
    await store.write({ ...s, lastSeen: at + 5000 }); // a request touched it (new cookie)
    expect(await store.seen(s)).toBe(at + 5000);
    await store.destroy(s);
    expect(await store.seen(s)).toBeUndefined();
    expect(await store.read(cookie)).toBeUndefined();
  });

  it('seen() is undefined once the session is revoked by sid or by subject', async () => {
    const store = createCookieStore(sealer, 3_600_000);
    const a = session({ sid: 'sid-a' });
    const b = session({ sub: 'bob', sid: 'sid-b' });
    await store.revoke('corp', { sid: 'sid-a' });
    expect(await store.seen(a)).toBeUndefined();
    expect(await store.seen(b)).toBe(b.lastSeen);
    await store.revoke('corp', { sub: 'bob', before: Date.now() });
    expect(await store.seen(b)).toBeUndefined();
  });
});

describe('Redis store: touches by live connections', () => {
  let redis: Redis | undefined;
  let server: RedisServer | undefined;
  beforeAll(async () => {
    const r = await redisForTests();
    server = r.server;
    expect(r.url, 'Redis is needed (CI=true refuses to run without it)').toBeDefined();
    redis = new Redis(r.url as string, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('a touch is seen by every instance (another store on the same Redis) and extends the record’s TTL, not its content', async () => {
    const r = redis as Redis;
    const a = createRedisStore(r, sealer, IDLE_MS);
    const b = createRedisStore(r, sealer, IDLE_MS);
    const s = session({ lastSeen: Date.now() - 500_000 });
    const cookie = await a.write(s);
    const stored = await r.get(SESSION_PREFIX + s.id);
    await r.pexpire(SESSION_PREFIX + s.id, 5000); // about to expire (idle by Redis' clock)
    const at = Date.now();
    await a.touch(s, at);
    expect((await b.read(cookie))?.lastSeen).toBe(at);
    expect(await b.seen(s)).toBe(at);
    expect(await r.get(SESSION_PREFIX + s.id)).toBe(stored); // the record (tokens, claims) untouched
    expect(await r.pttl(SESSION_PREFIX + s.id)).toBeGreaterThan(IDLE_MS - 10_000);
  });

  it('a touch after logout does not bring the session back', async () => {
    const r = redis as Redis;
    const store = createRedisStore(r, sealer, IDLE_MS);
    const s = session();
    const cookie = await store.write(s);
    await store.destroy(s);
    await store.touch(s, Date.now() + 1000);
    expect(await r.exists(SESSION_PREFIX + s.id)).toBe(0);
    expect(await store.read(cookie)).toBeUndefined();
    expect(await store.seen(s)).toBeUndefined();
  });
});

describe('which sessions an announced end covers', () => {
  const s = session({ id: 'id-1', sid: 'sid-1', sub: 'alice', createdAt: 1000 });
  it('by id, by sid, by subject (created until `before`), and only for its provider', () => {
    expect(sessionEndCovers({ provider: 'corp', id: 'id-1' }, s)).toBe(true);
    expect(sessionEndCovers({ provider: 'corp', id: 'id-2' }, s)).toBe(false);
    expect(sessionEndCovers({ provider: 'corp', sid: 'sid-1' }, s)).toBe(true);
    expect(sessionEndCovers({ provider: 'other', sid: 'sid-1' }, s)).toBe(false);
    expect(sessionEndCovers({ provider: 'corp', sub: 'alice', before: 1000 }, s)).toBe(true);
    expect(sessionEndCovers({ provider: 'corp', sub: 'alice', before: 999 }, s)).toBe(false); // a newer login stays
    expect(sessionEndCovers({ provider: 'corp', sub: 'bob' }, s)).toBe(false);
  });
});
