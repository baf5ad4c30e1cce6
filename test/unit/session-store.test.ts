import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSealer } from '../../src/authn/oidc/sealed.ts';
import { createCookieStore, newSessionId, type Session } from '../../src/authn/oidc/sessions.ts';
import { GatewayError } from '../../src/core/errors.ts';

const sealer = createSealer(['a-session-secret-of-at-least-32-characters!!']);

function session(extra: Partial<Session> = {}): Session {
  const now = Date.now();
  return {
    id: newSessionId(), provider: 'corp', sub: 'alice', sid: 'sid-1', claims: { email: 'alice@example.com' },
    createdAt: now, lastSeen: now, expiresAt: now + 3_600_000, ...extra,
  };
}

describe('cookie session store', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a cached (already opened) cookie is refused once its session expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = createCookieStore(sealer, 3_600_000);
    const cookie = await store.write(session({ expiresAt: Date.now() + 60_000 }));
    expect((await store.read(cookie))?.sub).toBe('alice'); // opened and cached
    expect((await store.read(cookie))?.sub).toBe('alice'); // from the cache
    vi.setSystemTime(Date.now() + 61_000);
    expect(await store.read(cookie)).toBeUndefined();
  });

  it('a reload that retires a secret ends the cookies sealed with it at once, even those already opened', async () => {
    const s1 = 'first-session-secret-of-at-least-32-characters';
    const s2 = 'second-session-secret-of-at-least-32-characters';
    const store = createCookieStore(createSealer([s1]), 3_600_000);
    const cookie = await store.write(session());
    expect((await store.read(cookie))?.sub).toBe('alice'); // opened and cached
    store.useSealer(createSealer([s2, s1])); // rotation: s1 still opens
    expect((await store.read(cookie))?.sub).toBe('alice');
    store.useSealer(createSealer([s2])); // s1 retired
    expect(await store.read(cookie)).toBeUndefined();
  });

  it('a tampered copy of a cached cookie is still refused (the cache is keyed by the exact cookie)', async () => {
    const store = createCookieStore(sealer, 3_600_000);
    const cookie = await store.write(session());
    expect(await store.read(cookie)).toBeDefined();
    const i = cookie.length - 5;
    const tampered = cookie.slice(0, i) + (cookie[i] === 'A' ? 'B' : 'A') + cookie.slice(i + 1);
    expect(await store.read(tampered)).toBeUndefined();
  });

  it('round-trips a session and refuses it after destroy', async () => {
    const store = createCookieStore(sealer, 3_600_000);
    const s = session({ accessToken: 'at', refreshToken: 'rt' });
    const cookie = await store.write(s);
    expect((await store.read(cookie))?.sub).toBe('alice');
    await store.destroy(s);
    expect(await store.read(cookie)).toBeUndefined();
  });

  it('keeps the login but drops large IdP tokens so the cookie stays under 4 KB', async () => {
    const store = createCookieStore(sealer, 3_600_000);
    const cookie = await store.write(session({ accessToken: 'x'.repeat(3000), refreshToken: 'y'.repeat(1500) }));
    expect(cookie.length).toBeLessThanOrEqual(3800);
    const back = await store.read(cookie);
    expect(back?.sub).toBe('alice');
    expect(back?.accessToken).toBeUndefined();
    expect(back?.refreshToken).toBeUndefined();
  });

  it('a session whose claims alone exceed one cookie is sealed whole (split into cookies later), up to three cookies', async () => {
    const store = createCookieStore(sealer, 3_600_000);
    const groups = Array.from({ length: 400 }, (_, i) => `group-${i}`);
    const cookie = await store.write(session({ claims: { groups } }));
    expect(cookie.length).toBeGreaterThan(3800);
    expect(cookie.length).toBeLessThanOrEqual(3 * 3800 - 2);
    expect((await store.read(cookie))?.claims.groups).toEqual(groups);
  });

  it('refuses a session that does not fit in three cookies with GW_ERR_SESSION_TOO_LARGE (502), its cause naming state.redis', async () => {
    const store = createCookieStore(sealer, 3_600_000);
    const err = await store.write(session({ claims: { groups: Array.from({ length: 1500 }, (_, i) => `group-${i}`) } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_ERR_SESSION_TOO_LARGE');
    expect((err as GatewayError).status).toBe(502);
    expect((err as GatewayError).detail).not.toContain('redis');
    expect(((err as GatewayError).cause as Error).message).toContain('configure state.redis');
    expect(((err as GatewayError).cause as Error).message).toContain('(1500 groups)');
  });

  it('back-channel revocation by sid and by subject ends sealed sessions', async () => {
    const store = createCookieStore(sealer, 3_600_000);
    const a = await store.write(session({ sid: 'sid-a' }));
    const b = await store.write(session({ sid: 'sid-b', sub: 'bob' }));
    await store.revoke('corp', { sid: 'sid-a' });
    expect(await store.read(a)).toBeUndefined();
    expect((await store.read(b))?.sub).toBe('bob');
    await store.revoke('corp', { sub: 'bob' });
    expect(await store.read(b)).toBeUndefined();
  });
});
