// Split session cookies: `<name>`, `<name>.1`, `<name>.2` put together only when every chunk of one session
// is there; anything else (tampered, mixed from two sessions, a chunk missing) opens to nothing.
import { describe, expect, it } from 'vitest';
import { createSealer } from '../../src/authn/oidc/sealed.ts';
import { createCookieStore, newSessionId, type Session } from '../../src/authn/oidc/sessions.ts';
import { clearSessionCookies, joinSessionCookie, sessionCookies, sessionHeaderBytes, CHUNK_CHARS } from '../../src/authn/oidc/session-cookies.ts';
import { isGatewayCookie, parseCookies, stripCookies } from '../../src/authn/oidc/cookies.ts';

const sealer = createSealer(['a-session-secret-of-at-least-32-characters!!']);
const NAME = '__Host-zt';

function session(groups: number, sub = 'alice'): Session {
  const now = Date.now();
  return {
    id: newSessionId(), provider: 'corp', sub, sid: undefined, claims: { groups: Array.from({ length: groups }, (_, i) => `g${i}`) },
    createdAt: now, lastSeen: now, expiresAt: now + 3_600_000,
  };
}

/** The Cookie header a browser sends back for these Set-Cookie lines (cleared ones dropped). */
function jarOf(lines: string[], base: Map<string, string> = new Map()): Map<string, string> {
  const jar = new Map(base);
  for (const l of lines) {
    const pair = l.slice(0, l.indexOf(';'));
    const [name, value] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
    if (/Max-Age=0(;|$)/.test(l)) jar.delete(name);
    else jar.set(name, value);
  }
  return jar;
}

describe('split session cookies', () => {
  const store = createCookieStore(sealer, 3_600_000);

  it('a small session is one cookie, exactly as before', async () => {
    const value = await store.write(session(3));
    const lines = sessionCookies(NAME, value, 3600, undefined);
    expect(lines).toEqual([`${NAME}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600`]);
    expect(joinSessionCookie(jarOf(lines), NAME)).toBe(value);
  });

  it('1000 groups: three cookies, each Set-Cookie line under 4 KB, put back together into the same session', async () => {
    const s = session(1000);
    const value = await store.write(s);
    expect(value.length).toBeGreaterThan(2 * CHUNK_CHARS);
    const lines = sessionCookies(NAME, value, 3600, undefined);
    expect(lines.map((l) => l.slice(0, l.indexOf('=')))).toEqual([NAME, `${NAME}.1`, `${NAME}.2`]);
    for (const l of lines) {
      expect(Buffer.byteLength(l)).toBeLessThan(4000);
      expect(l).toMatch(/; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600$/);
    }
    expect(lines[0]).toMatch(new RegExp(`^${NAME}=3~ey`));
    const joined = joinSessionCookie(jarOf(lines), NAME) as string;
    expect(joined).toBe(value);
    expect((await store.read(joined))?.claims.groups).toEqual(s.claims.groups);
  });

  it('a smaller session clears the chunks a bigger earlier one left (only those the browser sent)', async () => {
    const big = sessionCookies(NAME, await store.write(session(1000)), 3600, undefined);
    const jar = jarOf(big);
    const mid = sessionCookies(NAME, await store.write(session(600)), 3600, jar);
    expect(mid.map((l) => l.slice(0, l.indexOf(';')).replace(/=.*/, '='))).toEqual([`${NAME}=`, `${NAME}.1=`, `${NAME}.2=`]);
    expect(mid[2]).toBe(`${NAME}.2=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`);
    const jar2 = jarOf(mid, jar);
    expect([...jar2.keys()].sort()).toEqual([NAME, `${NAME}.1`]);
    const small = sessionCookies(NAME, await store.write(session(2)), 3600, jar2);
    expect(small.slice(1)).toEqual([`${NAME}.1=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`]);
    expect([...jarOf(small, jar2).keys()]).toEqual([NAME]);
  });

  it('logout clears the cookie and every chunk', () => {
    expect(clearSessionCookies(NAME)).toEqual([
      `${NAME}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`,
      `${NAME}.1=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`,
      `${NAME}.2=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`,
    ]);
  });

  describe('hostile chunks open to nothing, never a crash', () => {
    it('a tampered chunk, a missing middle chunk, chunks mixed from two sessions, a bogus count', async () => {
      const a = jarOf(sessionCookies(NAME, await store.write(session(1000, 'alice')), 3600, undefined));
      const b = jarOf(sessionCookies(NAME, await store.write(session(1000, 'bob')), 3600, undefined));
      expect((await store.read(joinSessionCookie(a, NAME) as string))?.sub).toBe('alice');

      const tampered = new Map(a);
      const mid = tampered.get(`${NAME}.1`) as string;
      tampered.set(`${NAME}.1`, mid.slice(0, 100) + (mid[100] === 'A' ? 'B' : 'A') + mid.slice(101));
      const missing = new Map(a);
      missing.delete(`${NAME}.1`);
      const mixed = new Map(a);
      mixed.set(`${NAME}.1`, b.get(`${NAME}.1`) as string);
      const mixedLast = new Map(a);
      mixedLast.set(`${NAME}.2`, b.get(`${NAME}.2`) as string);
      const swapped = new Map(a);
      swapped.set(`${NAME}.1`, a.get(`${NAME}.2`) as string);
      swapped.set(`${NAME}.2`, a.get(`${NAME}.1`) as string);
      const count9 = new Map(a);
      count9.set(NAME, `9~${(a.get(NAME) as string).slice(2)}`);
      const count2 = new Map(a);
      count2.set(NAME, `2~${(a.get(NAME) as string).slice(2)}`);
      const empty = new Map(a);
      empty.set(`${NAME}.2`, '');
      const huge = new Map(a);
      huge.set(`${NAME}.2`, 'x'.repeat(50_000));
      for (const [what, jar] of Object.entries({ tampered, missing, mixed, mixedLast, swapped, count9, count2, empty, huge })) {
        const joined = joinSessionCookie(jar, NAME);
        expect(joined, what).toBeDefined();
        expect(await store.read(joined as string), what).toBeUndefined();
      }
      // Chunks without their first cookie are no session at all.
      const headless = new Map(a);
      headless.delete(NAME);
      expect(joinSessionCookie(headless, NAME)).toBeUndefined();
    });
  });

  it('chunks are the gateway\'s cookies: stripped before the upstream, the app\'s look-alikes kept', () => {
    for (const n of [NAME, `${NAME}.1`, `${NAME}.2`, `${NAME}-tx-abc`]) expect(isGatewayCookie(n, NAME), n).toBe(true);
    for (const n of [`${NAME}.x`, `${NAME}.10`, `${NAME}.`, `${NAME}x.1`, `${NAME}-app`, 'other.1']) expect(isGatewayCookie(n, NAME), n).toBe(false);
    const headers = ['cookie', `${NAME}=3~a; ${NAME}.1=b; app=1; ${NAME}.2=c; ${NAME}.x=keep`];
    stripCookies(headers, NAME);
    expect(headers).toEqual(['cookie', `app=1; ${NAME}.x=keep`]);
    expect(parseCookies(headers).has(`${NAME}.1`)).toBe(false);
  });

  it('the header budget three cookies need', () => {
    expect(sessionHeaderBytes(NAME)).toBe(3 * (NAME.length + 3 + CHUNK_CHARS + 2) + 2048);
    expect(sessionHeaderBytes(NAME)).toBeLessThan(16_384); // the default max_header_bytes carries them
  });
});
