// Browser login end to end against a REAL OpenID Provider (panva's oidc-provider, in-process on loopback):
// the gateway on HTTPS (test CA, certificate for localhost), a real upstream, undici with the CA trusted
// explicitly and a cookie jar. Login redirect vs 401, PKCE/state/nonce, the session cookie, identity headers
// and cookie stripping, userinfo/session endpoints, RP-initiated and back-channel logout, idle and absolute
// timeouts, step-up MFA, single-flight refresh with rotation, and the Redis session store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createCA } from '../../tools/pki.ts';
import { createSealer } from '../../src/authn/oidc/sealed.ts';
import { startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';
import { IN_CI, redisForTests, type RedisServer } from '../helpers/redis.ts';
import { sleep, testClock } from '../helpers/wait.ts';
import {
  CookieJar,
  loginAtProvider,
  logoutAtProvider,
  send,
  SESSION_SECRET,
  startOidcGateway,
  startOidcProvider,
  type OidcGateway,
  type Reply,
  type TestOP,
} from '../helpers/oidc-provider.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };

let pki: { ca: string; cert: string; key: string };
let op: TestOP;
let upstream: Upstream;
let main: OidcGateway;
let short: OidcGateway;
/** The gateways' clocks for session idle/ttl and access-token expiry: advanced instead of sleeping. */
const mainClock = testClock();
const shortClock = testClock();
const redisClock = testClock();
let discovery: { authorization_endpoint: string; end_session_endpoint: string; token_endpoint: string };

const routes = (up: string) => `  - name: admin
    match: { path: /admin }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { acr: mfa }
  - name: recent
    match: { path: /recent }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { max_age: 1s }
  - name: mfa-only
    match: { path: /mfa-only }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ mfa: true }] }
  - name: no-contractors
    match: { path: /no-contractors }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize:
      deny: [{ claims: { department: contractors } }]
      allow: [{ authenticated: true }]
  - name: api-token
    match: { path: /api-token }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    identity_headers: { pass_token: true }
  - name: app
    match: { path: / }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;

/** A browser: its cookies at the gateway and at the provider. */
interface Browser {
  jar: CookieJar;
  idp: CookieJar;
}
const browser = (): Browser => ({ jar: new CookieJar(), idp: new CookieJar() });

function lastReceived(path: string): Received {
  const hits = upstream.received.filter((r) => r.url === path);
  const rec = hits[hits.length - 1];
  if (!rec) throw new Error(`the upstream never received ${path}`);
  return rec;
}

/** Every value of header `name` (lower-case) that the upstream received. */
function upstreamHeader(rec: Received, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if ((rec.rawHeaders[i] as string).toLowerCase() === name) out.push(rec.rawHeaders[i + 1] as string);
  return out;
}

function cookieLine(r: Reply, name: string): string {
  const line = r.setCookie.find((c) => c.startsWith(`${name}=`));
  if (!line) throw new Error(`no Set-Cookie ${name} in ${JSON.stringify(r.setCookie)}`);
  return line;
}

function attrs(line: string): { value: string; attrs: Map<string, string> } {
  const [pair, ...rest] = line.split(';');
  const m = new Map<string, string>();
  for (const a of rest) {
    const [k, v = ''] = a.trim().split('=');
    m.set((k as string).toLowerCase(), v);
  }
  return { value: (pair as string).slice((pair as string).indexOf('=') + 1), attrs: m };
}

/** Navigates to `path`, expects the login redirect, logs in at the provider and follows the callback. */
async function login(g: OidcGateway, b: Browser, path: string, account: string, otp?: string): Promise<{ start: Reply; callback: Reply }> {
  const start = await g.send(path, { jar: b.jar, headers: HTML });
  expect(start.status).toBe(302);
  expect(start.location?.startsWith(discovery.authorization_endpoint)).toBe(true);
  const { callback } = await loginAtProvider(op, start.location as string, b.idp, { account, ...(otp ? { otp } : {}) });
  expect(callback.startsWith(`${g.origin}/.zt/callback?`)).toBe(true);
  const cb = await g.send(callback.slice(g.origin.length), { jar: b.jar, headers: HTML });
  expect(cb.status, cb.text).toBe(302);
  return { start, callback: cb };
}

beforeAll(async () => {
  const ca = await createCA('oidc test CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  pki = { ca: ca.cert, ...leaf };
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  discovery = (await send(`${op.issuer}/.well-known/openid-configuration`)).json;
  main = await startOidcGateway(op, pki, { clientId: 'gw-main', routes: routes(upstream.url), now: mainClock.now });
  short = await startOidcGateway(op, pki, { clientId: 'gw-short', session: 'idle_timeout: 2s, ttl: 4s', routes: routes(upstream.url), now: shortClock.now });
});

afterAll(async () => {
  await main?.close();
  await short?.close();
  await upstream?.close();
  await op?.close();
});

describe('login redirect or 401', () => {
  it('an HTML navigation without a session is sent to the authorization endpoint with PKCE, state, nonce and a __Host- transaction cookie', async () => {
    const b = browser();
    const r = await main.send('/app/page?x=1', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(302);
    expect(r.headers['cache-control']).toBe('no-store');
    const loc = new URL(r.location as string);
    expect(`${loc.origin}${loc.pathname}`).toBe(discovery.authorization_endpoint);
    const q = loc.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe('gw-main');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(q.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['openid', 'email', 'profile']));
    expect(q.get('redirect_uri')).toBe(`${main.origin}/.zt/callback`);
    expect(q.has('acr_values')).toBe(false);
    expect(q.has('prompt')).toBe(false);
    // One transaction cookie, named after the state, with every attribute a __Host- cookie needs.
    expect(r.setCookie).toHaveLength(1);
    const tx = attrs(r.setCookie[0] as string);
    expect(r.setCookie[0]).toMatch(/^__Host-zt-tx-[A-Za-z0-9_-]{10}=/);
    expect(tx.attrs.has('secure')).toBe(true);
    expect(tx.attrs.has('httponly')).toBe(true);
    expect(tx.attrs.get('samesite')).toBe('Lax');
    expect(tx.attrs.get('path')).toBe('/');
    expect(tx.attrs.has('domain')).toBe(false);
    expect(Number(tx.attrs.get('max-age'))).toBeGreaterThan(0);
    expect(Number(tx.attrs.get('max-age'))).toBeLessThanOrEqual(600);
    // The verifier, state and nonce are sealed: neither the challenge nor the state appear in clear.
    expect(tx.value).not.toContain(q.get('state'));
    expect(Buffer.from(tx.value.split('.')[0] as string, 'base64url').toString()).toContain('"enc":"A256GCM"');
    // Two navigations are two independent transactions (two tabs).
    const again = await main.send('/other', { jar: b.jar, headers: HTML });
    expect(new URL(again.location as string).searchParams.get('state')).not.toBe(q.get('state'));
    expect(b.jar.names(main.origin).filter((n) => n.startsWith('__Host-zt-tx-'))).toHaveLength(2);
  });

  it('XHR, JSON, fetch() and non-GET requests get 401, never a redirect', async () => {
    const before = upstream.received.length;
    const cases: Array<{ method?: string; headers: Record<string, string> }> = [
      { headers: { ...HTML, 'x-requested-with': 'XMLHttpRequest' } },
      { headers: { accept: 'application/json' } },
      { headers: { accept: '*/*' } },
      { headers: { ...HTML, 'sec-fetch-mode': 'cors' } },
      { method: 'POST', headers: { ...HTML, 'content-type': 'application/x-www-form-urlencoded' } },
      { method: 'DELETE', headers: HTML },
    ];
    for (const c of cases) {
      const r = await main.send('/app/page', { method: c.method ?? 'GET', headers: c.headers, ...(c.method === 'POST' ? { body: 'a=1' } : {}) });
      expect(r.status, JSON.stringify(c)).toBe(401);
      expect(r.location).toBeUndefined();
      expect(r.setCookie).toEqual([]);
      expect(r.json.code).toBe('GW_ERR_UNAUTHENTICATED');
      expect(r.headers['www-authenticate']).toBe('Bearer realm="zt-gateway"');
    }
    // A browser navigation (Sec-Fetch-Mode: navigate) still gets the redirect.
    const nav = await main.send('/app/page', { headers: { ...HTML, 'sec-fetch-mode': 'navigate' } });
    expect(nav.status).toBe(302);
    expect(upstream.received.length).toBe(before);
  });
});

describe('login, session cookie, identity headers', () => {
  const b = browser();
  let sessionCookie = '';

  it('completes the code flow: back to the original path and query with a new __Host-zt session cookie', async () => {
    const { start, callback } = await login(main, b, '/app/page?x=1&y=%2F', 'alice');
    expect(callback.location).toBe('/app/page?x=1&y=%2F');
    expect(callback.headers['cache-control']).toBe('no-store');
    const line = cookieLine(callback, '__Host-zt');
    const c = attrs(line);
    expect(c.attrs.has('secure')).toBe(true);
    expect(c.attrs.has('httponly')).toBe(true);
    expect(c.attrs.get('samesite')).toBe('Lax');
    expect(c.attrs.get('path')).toBe('/');
    expect(c.attrs.has('domain')).toBe(false);
    expect(Number(c.attrs.get('max-age'))).toBe(8 * 3600);
    expect(c.value.length).toBeLessThan(3800);
    sessionCookie = c.value;
    // The transaction cookie of this login is cleared.
    const txName = (start.setCookie[0] as string).split('=')[0] as string;
    expect(attrs(cookieLine(callback, txName)).attrs.get('max-age')).toBe('0');
    expect(b.jar.get(main.origin, txName)).toBeUndefined();
    // The session cookie is sealed: no claim is readable in it.
    expect(c.value).not.toContain('alice');
    expect(Buffer.from(c.value.split('.')[0] as string, 'base64url').toString()).toContain('"alg":"dir"');
  });

  it('the upstream gets X-ZT-User/Email/Auth-Method from the session and never the gateway cookies; app cookies pass', async () => {
    // A second login started in the same browser leaves a transaction cookie behind: it must not leak either.
    const pending = await main.send('/.zt/login?return_to=/elsewhere', { jar: b.jar, headers: HTML });
    expect(pending.status).toBe(302);
    const jarCookies = b.jar.header(`${main.origin}/app/page`) as string;
    expect(jarCookies).toContain('__Host-zt=');
    expect(jarCookies).toContain('__Host-zt-tx-');
    const r = await main.send('/app/page?x=1', {
      headers: { ...HTML, 'x-zt-user': 'mallory', 'x-zt-email': 'mallory@evil.example' },
      cookie: `app_pref=dark; ${jarCookies}; __Host-ztapp=keep; theme=light`,
    });
    expect(r.status).toBe(200);
    const rec = lastReceived('/app/page?x=1');
    expect(upstreamHeader(rec, 'x-zt-user')).toEqual(['alice']);
    expect(upstreamHeader(rec, 'x-zt-email')).toEqual(['alice@corp.example']); // from the UserInfo endpoint
    expect(upstreamHeader(rec, 'x-zt-auth-method')).toEqual(['session']);
    expect(upstreamHeader(rec, 'x-zt-groups')).toEqual(['eng,admins']);
    expect(upstreamHeader(rec, 'authorization')).toEqual([]); // pass_token is off on this route
    const cookies = upstreamHeader(rec, 'cookie');
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toBe('app_pref=dark; __Host-ztapp=keep; theme=light');
    expect(cookies[0]).not.toContain(sessionCookie.slice(0, 40));
    // A request that carries only the gateway's cookies reaches the app with no Cookie header at all.
    await main.send('/only-gw-cookies', { headers: HTML, cookie: jarCookies });
    expect(upstreamHeader(lastReceived('/only-gw-cookies'), 'cookie')).toEqual([]);
  });

  it('/.zt/userinfo and /.zt/session describe the session (and say so when there is none)', async () => {
    const ui = await main.send('/.zt/userinfo', { jar: b.jar });
    expect(ui.status).toBe(200);
    expect(ui.headers['cache-control']).toBe('no-store');
    expect(ui.json).toMatchObject({
      subject: 'alice',
      provider: 'corp',
      issuer: op.issuer,
      method: 'session',
      email: 'alice@corp.example',
      email_verified: true,
      groups: ['eng', 'admins'],
      acr: 'mfa',
      amr: ['pwd', 'otp'],
    });
    expect(typeof ui.json.auth_time).toBe('number');
    expect(ui.json.claims).toBeUndefined();
    expect(ui.text).not.toMatch(/token/i);
    const st = await main.send('/.zt/session', { jar: b.jar });
    expect(st.status).toBe(200);
    expect(st.json.authenticated).toBe(true);
    expect(st.json.subject).toBe('alice');
    expect(st.json.provider).toBe('corp');
    expect(Date.parse(st.json.expires_at)).toBeGreaterThan(Date.now() + 7 * 3600_000);
    expect(Date.parse(st.json.idle_expires_at)).toBeGreaterThan(Date.now() + 29 * 60_000);

    const noUi = await main.send('/.zt/userinfo');
    expect(noUi.status).toBe(401);
    expect(noUi.json).toMatchObject({ code: 'GW_ERR_UNAUTHENTICATED', status: 401 });
    expect(noUi.headers['content-type']).toBe('application/problem+json');
    const noSt = await main.send('/.zt/session');
    expect(noSt.status).toBe(200);
    expect(noSt.json).toEqual({ authenticated: false });
    // A forged cookie is no session either.
    const forged = await main.send('/.zt/session', { cookie: '__Host-zt=eyJhbGciOiJkaXIifQ..AAAA.BBBB.CCCC' });
    expect(forged.json).toEqual({ authenticated: false });
  });

  it('/.zt/logout clears the cookie and goes to the end_session_endpoint; the old cookie is dead afterwards', async () => {
    const other = browser(); // another session of another user, unaffected by this logout
    await login(main, other, '/', 'bob');
    expect((await main.send('/.zt/session', { jar: other.jar })).json.subject).toBe('bob');

    const old = b.jar.get(main.origin, '__Host-zt') as string;
    const r = await main.send('/.zt/logout', { method: 'POST', jar: b.jar, headers: HTML });
    expect(r.status).toBe(302);
    const loc = new URL(r.location as string);
    expect(`${loc.origin}${loc.pathname}`).toBe(discovery.end_session_endpoint);
    expect(loc.searchParams.get('client_id')).toBe('gw-main');
    const cleared = attrs(cookieLine(r, '__Host-zt'));
    expect(cleared.value).toBe('');
    expect(cleared.attrs.get('max-age')).toBe('0');
    expect(cleared.attrs.get('path')).toBe('/');
    expect(cleared.attrs.has('secure')).toBe(true);
    expect(b.jar.get(main.origin, '__Host-zt')).toBeUndefined();

    // Replaying the old cookie value: a login redirect again, never the app.
    const before = upstream.received.length;
    const replay = await main.send('/app/page', { headers: HTML, cookie: `__Host-zt=${old}` });
    expect(replay.status).toBe(302);
    expect(replay.location?.startsWith(discovery.authorization_endpoint)).toBe(true);
    expect((await main.send('/app/page', { headers: { accept: 'application/json' }, cookie: `__Host-zt=${old}` })).status).toBe(401);
    expect((await main.send('/.zt/userinfo', { cookie: `__Host-zt=${old}` })).status).toBe(401);
    expect(upstream.received.length).toBe(before);

    // The user confirms the logout at the provider, which also back-channels it to the gateway.
    op.backchannel.length = 0;
    await logoutAtProvider(op, b.idp, r.location as string);
    expect(op.backchannel).toEqual([expect.objectContaining({ clientId: 'gw-main', ok: true })]);
    // Bob's session (another browser, another provider session) still works.
    expect((await main.send('/app/bob', { jar: other.jar, headers: HTML })).status).toBe(200);
    expect(upstreamHeader(lastReceived('/app/bob'), 'x-zt-user')).toEqual(['bob']);
    // Logging out without a session just clears the cookie.
    const none = await main.send('/.zt/logout', { method: 'POST' });
    expect(none.status).toBe(302);
    expect(none.location).toBe('/');
  });
});

describe('claims rules on browser sessions', () => {
  it('a deny rule on a custom claim from the IdP refuses that user (403, nothing forwarded) and lets others in', async () => {
    const m = browser();
    await login(main, m, '/app/x', 'mallory');
    const before = upstream.received.length;
    const denied = await main.send('/no-contractors/page', { jar: m.jar, headers: HTML });
    expect(denied.status).toBe(403);
    // A navigation: the page for people (README "Pages for people"), with Sign out for the session.
    expect(denied.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(denied.text).toContain('<h1>Access denied</h1>');
    expect(denied.text).toContain('<form method="post" action="/.zt/logout">');
    expect(denied.headers['content-security-policy']).toMatch(/form-action 'self' https?:\/\/[^;]+; /);
    expect(main.gw.logs.find((l) => l.audit === true && l.request_id === denied.headers['x-request-id'])?.code).toBe('GW_ERR_FORBIDDEN');
    expect((await main.send('/no-contractors/page', { jar: m.jar })).json.code).toBe('GW_ERR_FORBIDDEN');
    expect(upstream.received.slice(before).some((r) => r.url.startsWith('/no-contractors'))).toBe(false);
    const b = browser();
    await login(main, b, '/app/x', 'bob');
    expect((await main.send('/no-contractors/page', { jar: b.jar, headers: HTML })).status).toBe(200);
    expect(upstreamHeader(lastReceived('/no-contractors/page'), 'x-zt-user')).toEqual(['bob']);
  });
});

describe('pending logins in one browser', () => {
  it('keeps at most three login transaction cookies: each new login clears the oldest ones', async () => {
    const b = browser();
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await main.send(`/app/tab-${i}`, { jar: b.jar, headers: HTML });
      expect(r.status).toBe(302);
      names.push((r.setCookie[0] as string).split('=')[0] as string);
      const pending = (b.jar.header(`${main.origin}/app/`) ?? '').split('; ').filter((c) => c.startsWith('__Host-zt-tx-'));
      expect(pending.length).toBe(Math.min(i + 1, 3));
    }
    // The newest three survive; the first three were cleared (Max-Age=0) along the way.
    for (const n of names.slice(3)) expect(b.jar.get(main.origin, n)).toBeDefined();
    for (const n of names.slice(0, 3)) expect(b.jar.get(main.origin, n)).toBeUndefined();
  });
});

describe('back-channel logout', () => {
  it('a logout at the provider reaches the gateway and ends the session at once (cookie store: revocation list)', async () => {
    const b = browser();
    await login(main, b, '/bc/start', 'carol');
    expect((await main.send('/bc/start', { jar: b.jar, headers: HTML })).status).toBe(200);
    const cookie = b.jar.get(main.origin, '__Host-zt') as string;

    op.backchannel.length = 0;
    await logoutAtProvider(op, b.idp); // the user signs out at the provider, not at the gateway
    expect(op.backchannel).toEqual([expect.objectContaining({ clientId: 'gw-main', ok: true })]);
    expect(op.backchannel[0]?.sid).toMatch(/.+/);

    // The browser still holds its cookie, and it is dead.
    expect(b.jar.get(main.origin, '__Host-zt')).toBe(cookie);
    const before = upstream.received.length;
    const r = await main.send('/bc/after', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(302);
    expect(r.location?.startsWith(discovery.authorization_endpoint)).toBe(true);
    expect((await main.send('/.zt/session', { jar: b.jar })).json).toEqual({ authenticated: false });
    expect(upstream.received.length).toBe(before);
  });

  it('a valid logout token from the provider for another sid leaves this session alone', async () => {
    const b = browser();
    await login(main, b, '/bc/keep', 'carol');
    const r = await main.send('/.zt/backchannel-logout', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: await op.logoutToken('gw-main', { sid: 'some-other-sid', sub: 'carol' }) }).toString(),
    });
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect((await main.send('/bc/keep', { jar: b.jar, headers: HTML })).status).toBe(200);
  });
});

describe('back-channel logout sent by the provider on its own', () => {
  it('the provider signs and delivers a logout token for the session (sub + sid): the session ends', async () => {
    const b = browser();
    await login(main, b, '/bc/direct', 'bob');
    const sealed = await createSealer([SESSION_SECRET]).open(b.jar.get(main.origin, '__Host-zt') as string, 'session');
    expect(sealed?.sid).toMatch(/.+/);
    op.backchannel.length = 0;
    await op.backchannelLogout('gw-main', 'bob', sealed?.sid as string); // throws unless the gateway answers 200
    expect((await main.send('/bc/direct', { jar: b.jar, headers: HTML })).status).toBe(302);
  });
});

describe('idle timeout and absolute ttl', () => {
  it('an idle session (idle_timeout 2s) ends: the next navigation logs in again', async () => {
    const b = browser();
    await login(short, b, '/idle', 'bob');
    expect((await short.send('/idle', { jar: b.jar, headers: HTML })).status).toBe(200);
    shortClock.advance(2300); // past the idle timeout
    const r = await short.send('/idle', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(302);
    expect(r.location?.startsWith(discovery.authorization_endpoint)).toBe(true);
    expect((await short.send('/.zt/session', { jar: b.jar })).json).toEqual({ authenticated: false });
  });

  it('requests that still carry the pre-touch cookie all get the one cookie that touch sealed', async () => {
    const b = browser();
    await login(short, b, '/touch', 'bob');
    const old = b.jar.get(short.origin, '__Host-zt') as string;
    shortClock.advance(300); // past the touch interval (idle_timeout / 10 = 200ms), well within the idle timeout
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await short.send('/touch', { headers: HTML, cookie: `__Host-zt=${old}` }));
    const sealed = replies.map((r) => {
      expect(r.status).toBe(200);
      return attrs(cookieLine(r, '__Host-zt')).value;
    });
    expect(sealed[0]).not.toBe(old);
    expect(new Set(sealed).size).toBe(1);
    // The touched cookie is a working session of its own.
    expect((await short.send('/touch', { headers: HTML, cookie: `__Host-zt=${sealed[0]}` })).status).toBe(200);
  });

  it('activity slides the idle timeout (new cookies) but never past the absolute ttl (4s)', async () => {
    const b = browser();
    await login(short, b, '/slide', 'bob');
    const first = b.jar.get(short.origin, '__Host-zt') as string;
    let elapsed = 0;
    let renewed = 0;
    for (let i = 0; i < 6; i++) {
      shortClock.advance(500);
      elapsed += 500;
      const r = await short.send('/slide', { jar: b.jar, headers: HTML });
      expect(r.status, `after ${elapsed} ms`).toBe(200);
      if (r.setCookie.some((c) => c.startsWith('__Host-zt='))) renewed++;
    }
    expect(renewed).toBeGreaterThan(3);
    // The first cookie was last seen at login: it idled out although the session is alive.
    expect((await short.send('/slide', { headers: HTML, cookie: `__Host-zt=${first}` })).status).toBe(302);
    shortClock.advance(4200 - elapsed); // past the absolute ttl (4s), less than the idle timeout after the last request
    const r = await short.send('/slide', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(302);
    expect(r.location?.startsWith(discovery.authorization_endpoint)).toBe(true);
  });
});

describe('step-up', () => {
  it('a session without MFA is sent back to the provider with acr_values=mfa and prompt=login; API calls get 401 insufficient_user_authentication', async () => {
    const b = browser();
    await login(main, b, '/app/bob', 'bob');
    const before = upstream.received.length;
    const r = await main.send('/admin/panel?id=7', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(302);
    const q = new URL(r.location as string).searchParams;
    expect(r.location?.startsWith(discovery.authorization_endpoint)).toBe(true);
    expect(q.get('acr_values')).toBe('mfa');
    expect(q.get('prompt')).toBe('login');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(r.setCookie.some((c) => c.startsWith('__Host-zt-tx-'))).toBe(true);
    const audited = main.gw.logs.filter((l) => l.msg === 'decision' && l.path === '/admin/panel' && l.subject === 'bob');
    expect(audited.map((l) => [l.decision, l.status])).toEqual([['step_up', 302]]);

    const api = await main.send('/admin/panel', { jar: b.jar, headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(api.location).toBeUndefined();
    expect(api.headers['www-authenticate']).toBe('Bearer realm="zt-gateway", error="insufficient_user_authentication", acr_values="mfa"');
    expect(upstream.received.length).toBe(before);

    // The policy's `mfa: true` refuses the same session (403, no redirect).
    const mfaOnly = await main.send('/mfa-only', { jar: b.jar, headers: HTML });
    expect(mfaOnly.status).toBe(403);
    expect(upstream.received.length).toBe(before);
  });

  it('a step-up login with a second factor returns to the page and satisfies the route; mfa: true allows an MFA session', async () => {
    const b = browser();
    await login(main, b, '/app/carol', 'carol'); // password only
    expect((await main.send('/.zt/userinfo', { jar: b.jar })).json).toMatchObject({ acr: 'pwd', amr: ['pwd'] });
    const weak = b.jar.get(main.origin, '__Host-zt') as string;
    const up = await main.send('/admin/panel?id=7', { jar: b.jar, headers: HTML });
    expect(up.status).toBe(302);
    // prompt=login: the provider asks again although its session exists; carol adds her OTP.
    const done = await loginAtProvider(op, up.location as string, b.idp, { account: 'carol', otp: '123456' });
    expect(done.prompted).toBe(true);
    expect(done.promptParams).toMatchObject({ acr_values: 'mfa', prompt: 'login' });
    const cb = await main.send(done.callback.slice(main.origin.length), { jar: b.jar, headers: HTML });
    expect(cb.status).toBe(302);
    expect(cb.location).toBe('/admin/panel?id=7');
    const strong = b.jar.get(main.origin, '__Host-zt') as string;
    expect(strong).not.toBe(weak);
    const r = await main.send('/admin/panel?id=7', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(200);
    expect(upstreamHeader(lastReceived('/admin/panel?id=7'), 'x-zt-user')).toEqual(['carol']);
    expect((await main.send('/mfa-only', { jar: b.jar, headers: HTML })).status).toBe(200);
    // The weaker session it replaced is over (no replay of the pre-step-up cookie).
    expect((await main.send('/app/carol', { headers: HTML, cookie: `__Host-zt=${weak}` })).status).toBe(302);

    const a = browser();
    await login(main, a, '/mfa-only', 'alice'); // her account always logs in with MFA
    const ok = await main.send('/mfa-only', { jar: a.jar, headers: HTML });
    expect(ok.status).toBe(200);
    expect(upstreamHeader(lastReceived('/mfa-only'), 'x-zt-user')).toEqual(['alice']);
    expect((await main.send('/admin/x', { jar: a.jar, headers: { accept: 'application/json' } })).status).toBe(200);
  });
});

describe('step-up: max_age', () => {
  it('a login older than max_age goes back to the provider with max_age and prompt=login, then passes with a fresh auth_time', async () => {
    const b = browser();
    await login(main, b, '/recent/a', 'bob');
    expect((await main.send('/recent/a', { jar: b.jar, headers: HTML })).status).toBe(200);
    const authTime = (await main.send('/.zt/userinfo', { jar: b.jar })).json.auth_time as number;
    await sleep(Math.max(0, (authTime + 2) * 1000 - Date.now() + 100)); // now - auth_time > 1 s
    const api = await main.send('/recent/a', { jar: b.jar, headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(api.headers['www-authenticate']).toBe('Bearer realm="zt-gateway", error="insufficient_user_authentication", max_age=1');
    const r = await main.send('/recent/a', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(302);
    const q = new URL(r.location as string).searchParams;
    expect(q.get('max_age')).toBe('1');
    expect(q.get('prompt')).toBe('login');
    const done = await loginAtProvider(op, r.location as string, b.idp, { account: 'bob' });
    expect(done.prompted).toBe(true); // the provider re-authenticates although its session exists
    const cb = await main.send(done.callback.slice(main.origin.length), { jar: b.jar, headers: HTML });
    expect(cb.status).toBe(302);
    expect(cb.location).toBe('/recent/a');
    expect((await main.send('/recent/a', { jar: b.jar, headers: HTML })).status).toBe(200);
    expect((await main.send('/.zt/userinfo', { jar: b.jar })).json.auth_time).toBeGreaterThan(authTime);
  });
});

describe('refresh', () => {
  it('concurrent requests after the access token expired cause exactly one refresh; the upstream gets the new token', async () => {
    op.accessTokenTtl = 2;
    try {
      const b = browser();
      await login(main, b, '/api-token/first', 'alice');
      const r1 = await main.send('/api-token/first', { jar: b.jar, headers: { accept: 'application/json', authorization: 'Bearer client-supplied' } });
      expect(r1.status).toBe(200);
      const auth1 = upstreamHeader(lastReceived('/api-token/first'), 'authorization');
      expect(auth1).toHaveLength(1); // the client's own Authorization never reaches the app
      const at1 = (auth1[0] as string).replace(/^Bearer /, '');
      expect(at1).not.toBe('client-supplied');
      expect((await op.provider.AccessToken.find(at1))?.accountId).toBe('alice');
      const oldCookie = b.jar.get(main.origin, '__Host-zt') as string;

      mainClock.advance(2300); // the access token (2 s) has expired
      const refreshesBefore = op.tokenRequests.filter((t) => t.grantType === 'refresh_token').length;
      const N = 6;
      const replies = await Promise.all(
        Array.from({ length: N }, (_, i) => main.send(`/api-token/c${i}`, { headers: { accept: 'application/json' }, cookie: `__Host-zt=${oldCookie}` })),
      );
      for (const r of replies) expect(r.status).toBe(200);
      const refreshes = op.tokenRequests.filter((t) => t.grantType === 'refresh_token');
      expect(refreshes.length - refreshesBefore).toBe(1);
      expect(refreshes[refreshes.length - 1]).toMatchObject({ clientId: 'gw-main', status: 200 });
      const tokens = new Set(Array.from({ length: N }, (_, i) => upstreamHeader(lastReceived(`/api-token/c${i}`), 'authorization').join('|')));
      expect(tokens.size).toBe(1);
      const at2 = ([...tokens][0] as string).replace(/^Bearer /, '');
      expect(at2).not.toBe(at1);
      const found = await op.provider.AccessToken.find(at2);
      expect(found?.accountId).toBe('alice');
      // Every answer carries the refreshed session cookie.
      for (const r of replies) expect(r.setCookie.some((c) => c.startsWith('__Host-zt='))).toBe(true);

      // A late request with the pre-refresh cookie reuses the result (the rotated refresh token is not spent twice).
      const late = await main.send('/api-token/late', { headers: { accept: 'application/json' }, cookie: `__Host-zt=${oldCookie}` });
      expect(late.status).toBe(200);
      expect(upstreamHeader(lastReceived('/api-token/late'), 'authorization')).toEqual([`Bearer ${at2}`]);
      // The new cookie carries the new token and needs no refresh.
      b.jar.store(main.origin, replies[0]?.setCookie);
      const next = await main.send('/api-token/next', { jar: b.jar, headers: { accept: 'application/json' } });
      expect(next.status).toBe(200);
      expect(upstreamHeader(lastReceived('/api-token/next'), 'authorization')).toEqual([`Bearer ${at2}`]);
      expect(op.tokenRequests.filter((t) => t.grantType === 'refresh_token').length - refreshesBefore).toBe(1);
    } finally {
      op.accessTokenTtl = 600;
    }
  });
});

describe('Redis session store', () => {
  let redisServer: RedisServer | undefined;
  let redisUrl: string | undefined;
  let redis: Redis | undefined;
  let rg: OidcGateway | undefined;

  beforeAll(async () => {
    // Our own redis-server when there is one; else the shared one at 6379. With CI=true neither → fail.
    ({ url: redisUrl, server: redisServer } = await redisForTests());
    if (!redisUrl) return;
    redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    rg = await startOidcGateway(op, pki, { clientId: 'gw-redis', state: `state: { redis: "${redisUrl}" }`, routes: routes(upstream.url), now: redisClock.now });
  });

  afterAll(async () => {
    await rg?.close();
    redis?.disconnect();
    await redisServer?.stop();
  });

  it('login works; the cookie is short and holds only a sealed session id; logout sends id_token_hint', async (ctx) => {
    // Only outside CI, without any Redis (redisForTests throws under CI=true; this guard does too).
    if (!rg || !redis) {
      if (IN_CI) throw new Error('CI=true but the Redis-backed gateway did not start');
      return ctx.skip();
    }
    const b = browser();
    const { callback } = await login(rg, b, '/r/page?q=1', 'alice');
    expect(callback.location).toBe('/r/page?q=1');
    const cookie = attrs(cookieLine(callback, '__Host-zt')).value;
    expect(cookie.length).toBeLessThan(200);
    const opened = await createSealer([SESSION_SECRET]).open(cookie, 'sid');
    expect(Object.keys(opened ?? {}).sort()).toEqual(['id', 'pur']);
    const stored = JSON.parse((await redis.get(`ztgw:sess:${opened?.id}`)) as string);
    expect(stored).toMatchObject({ sub: 'alice', provider: 'corp' });
    expect(stored.claims.email).toBe('alice@corp.example');
    const ttl = await redis.pttl(`ztgw:sess:${opened?.id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30 * 60_000);

    const r = await rg.send('/r/page?q=1', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(200);
    const rec = lastReceived('/r/page?q=1');
    expect(upstreamHeader(rec, 'x-zt-user')).toEqual(['alice']);
    expect(upstreamHeader(rec, 'x-zt-email')).toEqual(['alice@corp.example']);
    expect(upstreamHeader(rec, 'cookie')).toEqual([]);

    const out = await rg.send('/.zt/logout', { method: 'POST', jar: b.jar });
    expect(out.status).toBe(302);
    const hint = new URL(out.location as string).searchParams.get('id_token_hint');
    expect(hint?.split('.')).toHaveLength(3);
    expect(await redis.exists(`ztgw:sess:${opened?.id}`)).toBe(0);
    expect((await rg.send('/r/page', { headers: HTML, cookie: `__Host-zt=${cookie}` })).status).toBe(302);
  });

  it('refresh with Redis: one IdP call for concurrent requests, the rotated tokens stored before the lock is released', async (ctx) => {
    if (!rg || !redis) return ctx.skip();
    op.accessTokenTtl = 2;
    try {
      const b = browser();
      await login(rg, b, '/api-token/r0', 'bob');
      const id = (await createSealer([SESSION_SECRET]).open(b.jar.get(rg.origin, '__Host-zt') as string, 'sid'))?.id as string;
      const before = JSON.parse((await redis.get(`ztgw:sess:${id}`)) as string);
      redisClock.advance(2300); // the access token (2 s) has expired
      const count0 = op.tokenRequests.filter((t) => t.grantType === 'refresh_token').length;
      const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => rg!.send(`/api-token/r${i + 1}`, { jar: b.jar, headers: { accept: 'application/json' } })));
      for (const r of replies) expect(r.status).toBe(200);
      expect(op.tokenRequests.filter((t) => t.grantType === 'refresh_token').length - count0).toBe(1);
      const after = JSON.parse((await redis.get(`ztgw:sess:${id}`)) as string);
      expect(after.accessToken).not.toBe(before.accessToken);
      expect(after.refreshToken).not.toBe(before.refreshToken); // rotated
      for (let i = 1; i <= 5; i++) expect(upstreamHeader(lastReceived(`/api-token/r${i}`), 'authorization')).toEqual([`Bearer ${after.accessToken}`]);
      expect(await redis.exists(`ztgw:sess:lock:${id}`)).toBe(0);
    } finally {
      op.accessTokenTtl = 600;
    }
  });

  it('back-channel logout from the provider deletes the session in Redis at once', async (ctx) => {
    if (!rg || !redis) return ctx.skip();
    const b = browser();
    await login(rg, b, '/r/bc', 'carol');
    const opened = await createSealer([SESSION_SECRET]).open(b.jar.get(rg.origin, '__Host-zt') as string, 'sid');
    expect(await redis.exists(`ztgw:sess:${opened?.id}`)).toBe(1);
    op.backchannel.length = 0;
    await logoutAtProvider(op, b.idp);
    expect(op.backchannel).toEqual([expect.objectContaining({ clientId: 'gw-redis', ok: true })]);
    expect(await redis.exists(`ztgw:sess:${opened?.id}`)).toBe(0);
    const r = await rg.send('/r/bc', { jar: b.jar, headers: HTML });
    expect(r.status).toBe(302);
    expect(r.location?.startsWith(discovery.authorization_endpoint)).toBe(true);
  });
});
