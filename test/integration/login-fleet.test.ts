// One login for many apps (login.host): a real gateway serving auth.localhost, a.localhost and b.localhost,
// panva's oidc-provider with ONE registered redirect URI (the auth host's), a recording upstream and a
// WebSocket echo. A browser (a cookie jar per host, no redirect following) logs in once through the auth host
// and reaches both apps with the IdP asked once; the one-time handoff code is refused when replayed, used on
// another host, used without (or with another browser's) login transaction cookie, or late; return_to only
// reaches our own hosts; a fleet logout on one host ends the others' sessions and live connections. With
// Redis too (codes taken with GETDEL, sessions and the login index there).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar, loginAtProvider, startOidcProvider, type Reply, type TestOP } from '../helpers/oidc-provider.ts';
import { fleetPki, fleetRoutes, startFleetGateway, type FleetGateway, type FleetPki } from '../helpers/fleet.ts';
import { closeAllLive, closedWithin, openLive, startEchoUpstream, type EchoUpstream } from '../helpers/live.ts';
import { redisForTests, type RedisServer } from '../helpers/redis.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { startGateway } from '../helpers/gateway.ts';
import { testClock, waitFor, type TestClock } from '../helpers/wait.ts';
import { CLOSE_TEXT } from '../../src/live/index.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
const API = { accept: 'application/json' };
let pki: FleetPki;
let op: TestOP;
let up: Upstream;
let echo: EchoUpstream;
let redis: { url: string | undefined; server: RedisServer | undefined };
const gateways: FleetGateway[] = [];

beforeAll(async () => {
  pki = await fleetPki();
  op = await startOidcProvider({ gatewayCa: pki.ca });
  up = await startUpstream();
  echo = await startEchoUpstream();
  redis = await redisForTests();
});

afterEach(() => closeAllLive());

afterAll(async () => {
  for (const g of gateways) await g.close();
  await up?.close();
  await echo?.close();
  await op?.close();
  await redis?.server?.stop();
});

async function fleet(clientId: string, opts: { login?: string; state?: string; now?: () => number; moreRoutes?: string } = {}): Promise<FleetGateway> {
  const g = await startFleetGateway(op, pki, { clientId, routes: fleetRoutes(up.url, echo.url) + (opts.moreRoutes ?? ''), login: opts.login ?? '{ host: auth.localhost }', ...opts });
  gateways.push(g);
  return g;
}

/** Authorization-code grants the IdP answered for this client: how many times the user was sent to log in. */
const codeGrants = (g: FleetGateway) => op.tokenRequests.filter((t) => t.clientId === g.clientId && t.grantType === 'authorization_code').length;

/** Follows gateway redirects (never the IdP's) from `url`, with the browser's `jar`; the last answer and the trail. */
async function follow(g: FleetGateway, url: string, jar: CookieJar, idp?: { jar: CookieJar; account: string; otp?: string }): Promise<{ last: Reply; trail: string[] }> {
  const trail: string[] = [url];
  let next = url;
  for (let i = 0; i < 10; i++) {
    if (next.startsWith(op.issuer)) {
      if (!idp) throw new Error(`sent to the IdP (${next}) where no login was expected`);
      next = (await loginAtProvider(op, next, idp.jar, { account: idp.account, ...(idp.otp ? { otp: idp.otp } : {}) })).callback;
      trail.push(next);
      continue;
    }
    const r = await g.send(next, { jar, headers: HTML });
    if (r.status !== 302 || r.location === undefined) return { last: r, trail };
    next = new URL(r.location, next).href;
    trail.push(next);
  }
  throw new Error(`too many redirects: ${trail.join(' → ')}`);
}

/** Logs `account` in through the auth host starting at a.localhost; the browser jar (every host) and the IdP jar. */
async function loginOnce(g: FleetGateway, account = 'bob', otp?: string): Promise<{ jar: CookieJar; idpJar: CookieJar }> {
  const jar = new CookieJar();
  const idpJar = new CookieJar();
  const { last, trail } = await follow(g, `${g.origin('a.localhost')}/app/x?y=1`, jar, { jar: idpJar, account, ...(otp ? { otp } : {}) });
  expect(last.status).toBe(200);
  expect(trail.at(-1)).toBe(`${g.origin('a.localhost')}/app/x?y=1`);
  return { jar, idpJar };
}

/** Up to the handoff: a code minted for `host` in `jar`'s browser (the auth host already logged in). */
async function codeFor(g: FleetGateway, host: 'a.localhost' | 'b.localhost', jar: CookieJar, path = '/app/'): Promise<string> {
  const start = await g.send(`${g.origin(host)}${path}`, { jar, headers: HTML });
  expect(start.status).toBe(302);
  const atAuth = await g.send(start.location as string, { jar, headers: HTML });
  expect(atAuth.status).toBe(302);
  const handoff = new URL(atAuth.location as string);
  expect(handoff.origin + handoff.pathname).toBe(`${g.origin(host)}/.zt/handoff`);
  return handoff.searchParams.get('code') as string;
}

/**
 * The browser navigated to /.zt/handoff, so the refusal is a page for people (400); its request id leads to the
 * refusal's log event, which names the reason.
 */
function expectRefused(g: FleetGateway, r: Reply, reason: string): void {
  expect(r.status).toBe(400);
  expect(String(r.headers['content-type'])).toMatch(/^text\/html/);
  const id = r.headers['x-request-id'] as string;
  expect(r.text).toContain(id);
  expect(g.gw.logs.find((l) => l.event === 'login_handoff_refused' && l.request_id === id)?.reason).toBe(reason);
  expect(g.gw.logs.find((l) => l.msg === 'decision' && l.request_id === id)?.code).toBe('GW_ERR_LOGIN_HANDOFF');
  expect(r.setCookie.some((c) => c.startsWith('__Host-zt='))).toBe(false);
}

/** The refusal is audited (a decision record with its code, an event with its reason) and the code is in no log line. */
async function expectAudited(g: FleetGateway, reason: string, code: string): Promise<void> {
  await waitFor(() => g.gw.logs.find((l) => l.event === 'login_handoff_refused' && l.reason === reason), { what: `a login_handoff_refused ${reason} log line` });
  await waitFor(() => g.gw.logs.find((l) => l.msg === 'decision' && l.code === 'GW_ERR_LOGIN_HANDOFF' && l.path === '/.zt/handoff'), { what: 'the decision record' });
  expect(JSON.stringify(g.gw.logs)).not.toContain(code);
}

describe.each([
  ['memory', false],
  ['redis', true],
] as const)('one auth host (%s state)', (_name, withRedis) => {
  let g: FleetGateway;
  let clock: TestClock;
  beforeAll(async () => {
    if (withRedis && !redis.url) throw new Error('no Redis for the login fleet test');
    clock = testClock();
    g = await fleet(`fleet-${_name}`, { now: clock.now, ...(withRedis ? { state: `state: { redis: "${redis.url}" }` } : {}) });
  });

  it('logs in once through the auth host: a.localhost and b.localhost both reach the upstream; the IdP was asked once', async () => {
    const before = codeGrants(g);
    up.reset();
    const { jar } = await loginOnce(g);
    const { last, trail } = await follow(g, `${g.origin('b.localhost')}/app/z`, jar); // no IdP allowed here
    expect(last.status).toBe(200);
    expect(trail.map((u) => new URL(u).host)).toEqual([`b.localhost:${g.port}`, `auth.localhost:${g.port}`, `b.localhost:${g.port}`, `b.localhost:${g.port}`]);
    expect(codeGrants(g) - before).toBe(1);
    const seen = up.received.map((r) => [r.url, r.headers['x-zt-user'], r.headers.cookie]);
    expect(seen).toEqual([
      ['/app/x?y=1', 'bob', undefined], // the gateway's cookies (session, transactions) never reach the app
      ['/app/z', 'bob', undefined],
    ]);
    // Each host has its own __Host- session cookie; none has a Domain.
    for (const host of ['auth.localhost', 'a.localhost', 'b.localhost']) {
      const c = [...jar.cookies.values()].find((x) => x.host === host && x.name === '__Host-zt');
      expect(c?.raw).toMatch(/; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
      expect(c?.raw.toLowerCase()).not.toContain('domain');
    }
    // The IdP only ever saw the auth host's redirect URI.
    const auth = await g.send(`${g.origin('auth.localhost')}/.zt/login`, { jar: new CookieJar(), headers: HTML });
    expect(new URL(auth.location as string).searchParams.get('redirect_uri')).toBe(`${g.origin('auth.localhost')}/.zt/callback`);
  });

  it('a replayed code is refused (and audited), the first use having worked', async () => {
    const { jar } = await loginOnce(g);
    const code = await codeFor(g, 'b.localhost', jar);
    const first = await g.send(`${g.origin('b.localhost')}/.zt/handoff?code=${code}`, { jar, headers: HTML });
    expect(first.status).toBe(302);
    const again = await g.send(`${g.origin('b.localhost')}/.zt/handoff?code=${code}`, { jar, headers: HTML });
    expectRefused(g, again, 'handoff_unknown');
    await expectAudited(g, 'handoff_unknown', code);
  });

  it('a code used on another host is refused, and is spent', async () => {
    const { jar } = await loginOnce(g);
    const code = await codeFor(g, 'b.localhost', jar);
    await g.send(`${g.origin('a.localhost')}/app/`, { jar, headers: HTML }); // a.localhost has its own transaction cookie too
    expectRefused(g, await g.send(`${g.origin('a.localhost')}/.zt/handoff?code=${code}`, { jar, headers: HTML }), 'handoff_wrong_host');
    await expectAudited(g, 'handoff_wrong_host', code);
    expectRefused(g, await g.send(`${g.origin('b.localhost')}/.zt/handoff?code=${code}`, { jar, headers: HTML }), 'handoff_unknown');
  });

  it('a code without the app host’s transaction cookie, or with another browser’s, is refused', async () => {
    const { jar } = await loginOnce(g);
    const code = await codeFor(g, 'b.localhost', jar);
    const bare = new CookieJar(); // the victim's code, opened in the attacker's browser (no transaction there)
    expectRefused(g, await g.send(`${g.origin('b.localhost')}/.zt/handoff?code=${code}`, { jar: bare, headers: HTML }), 'handoff_unbound');
    await expectAudited(g, 'handoff_unbound', code);

    // Login CSRF: the attacker's code, planted in a victim's browser that has a login transaction of its own.
    const victim = new CookieJar();
    await g.send(`${g.origin('b.localhost')}/app/`, { jar: victim, headers: HTML });
    const attackerCode = await codeFor(g, 'b.localhost', jar);
    expectRefused(g, await g.send(`${g.origin('b.localhost')}/.zt/handoff?code=${attackerCode}`, { jar: victim, headers: HTML }), 'handoff_unbound');
    expect(victim.get(g.origin('b.localhost'), '__Host-zt')).toBeUndefined();
  });

  it('a code after 30 s is refused', async () => {
    const { jar } = await loginOnce(g);
    const code = await codeFor(g, 'b.localhost', jar);
    clock.advance(30_001);
    expectRefused(g, await g.send(`${g.origin('b.localhost')}/.zt/handoff?code=${code}`, { jar, headers: HTML }), 'handoff_expired');
    await expectAudited(g, 'handoff_expired', code);
  });

  it('malformed and unknown codes are refused', async () => {
    for (const code of ['', 'x', 'A'.repeat(43), `${'A'.repeat(42)}%2F`]) {
      expectRefused(g, await g.send(`${g.origin('a.localhost')}/.zt/handoff?code=${code}`, { jar: new CookieJar(), headers: HTML }), 'handoff_unknown');
    }
  });

  it('fleet logout on a.localhost ends the sessions on b.localhost and the auth host, and b’s open WebSocket', async () => {
    const { jar } = await loginOnce(g);
    expect((await follow(g, `${g.origin('b.localhost')}/app/`, jar)).last.status).toBe(200);
    const cookieB = jar.header(`${g.origin('b.localhost')}/live`) as string;
    const ws = await openLive(`wss://b.localhost:${g.port}/live/ws`, { ca: pki.ca, lookup: loopback, headers: { cookie: cookieB } } as never);
    await ws.roundTrip('before');
    const since = Date.now();
    const out = await g.send(`${g.origin('a.localhost')}/.zt/logout`, {
      jar,
      method: 'POST',
      headers: { ...HTML, 'sec-fetch-site': 'same-origin', origin: g.origin('a.localhost') },
    });
    expect(out.status).toBe(302);
    const closed = await closedWithin(ws, 1000, since);
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1008, reason: CLOSE_TEXT.logout });
    // b.localhost's cookie (still in the jar) no longer opens a session; nor does the auth host's.
    expect((await g.send(`${g.origin('b.localhost')}/app/`, { jar, headers: API })).status).toBe(401);
    const b = await g.send(`${g.origin('b.localhost')}/app/`, { jar, headers: HTML });
    const atAuth = await g.send(b.location as string, { jar, headers: HTML });
    expect((atAuth.location as string).startsWith(op.issuer)).toBe(true); // back to the IdP: the login is over
  });
});

const loopback = (_h: string, o: { all?: boolean }, cb: (...a: unknown[]) => void) => (o?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));

describe('return_to with login.host', () => {
  let g: FleetGateway;
  let jar: CookieJar;
  beforeAll(async () => {
    g = await fleet('fleet-return');
    ({ jar } = await loginOnce(g));
  });

  /** Where /.zt/login?return_to=<value> on `host` finally lands (the auth host is logged in: no IdP). */
  async function landing(host: 'a.localhost' | 'auth.localhost', value: string): Promise<string> {
    const { trail } = await follow(g, `${g.origin(host)}/.zt/login?return_to=${encodeURIComponent(value)}`, jar);
    return trail.at(-1) as string;
  }

  it('an absolute URL on another of the gateway’s hosts (same scheme and port) is reached through that host', async () => {
    expect(await landing('a.localhost', `${g.origin('b.localhost')}/app/deep?q=1`)).toBe(`${g.origin('b.localhost')}/app/deep?q=1`);
    expect(await landing('auth.localhost', `${g.origin('a.localhost')}/app/from-portal`)).toBe(`${g.origin('a.localhost')}/app/from-portal`);
    expect(await landing('a.localhost', '/app/here')).toBe(`${g.origin('a.localhost')}/app/here`);
  });

  it.each([
    'https://evil.example/app/',
    'https://evil.example',
    '//evil.example/app/',
    '///evil.example/',
    'https:evil.example',
    'https:/evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/%09/evil.example',
    'http://b.localhost:PORT/app/', // another scheme
    'https://b.localhost:1/app/', // another port
    'https://b.localhost:PORT@evil.example/',
    'https://b.localhost.evil.example:PORT/',
    'javascript:alert(1)',
  ])('return_to %s → /', async (value) => {
    const v = value.replace('PORT', String(g.port));
    expect(await landing('a.localhost', v)).toBe(`${g.origin('a.localhost')}/`);
  });
});

describe('login.host with logout: host', () => {
  it('a logout on a.localhost ends only that host’s session', async () => {
    const g = await fleet('fleet-host-logout', { login: '{ host: auth.localhost, logout: host }' });
    const { jar } = await loginOnce(g);
    expect((await follow(g, `${g.origin('b.localhost')}/app/`, jar)).last.status).toBe(200);
    const out = await g.send(`${g.origin('a.localhost')}/.zt/logout`, { jar, method: 'POST', headers: { ...HTML, 'sec-fetch-site': 'same-origin' } });
    expect(out.status).toBe(302);
    expect(out.location).toBe('/');
    expect((await g.send(`${g.origin('a.localhost')}/app/`, { jar, headers: API })).status).toBe(401);
    expect((await g.send(`${g.origin('b.localhost')}/app/`, { jar, headers: API })).status).toBe(200);
  });
});

describe('login.host at load', () => {
  it('refuses an auth host that is not one of the gateway’s own hosts', async () => {
    await expect(fleet('fleet-bad', { login: '{ host: elsewhere.example }' })).rejects.toThrow(/login\.host.*not one of the gateway's own hosts/);
  });
});

describe('login.host with step-up', () => {
  it('a step-up on a.localhost goes through the auth host to the IdP (acr, prompt=login) and back; b.localhost keeps its session', async () => {
    const g = await fleet('fleet-step-up', {
      moreRoutes: `  - name: a-admin
    match: { host: a.localhost, path: /admin }
    upstream: { url: ${up.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { acr: mfa }
`,
    });
    const { jar, idpJar } = await loginOnce(g, 'carol'); // password only
    expect((await follow(g, `${g.origin('b.localhost')}/app/`, jar)).last.status).toBe(200);
    const start = await g.send(`${g.origin('a.localhost')}/admin/`, { jar, headers: HTML });
    expect(start.status).toBe(302);
    const asked = new URL(start.location as string);
    expect(asked.origin + asked.pathname).toBe(`${g.origin('auth.localhost')}/.zt/login`);
    expect([asked.searchParams.get('acr'), asked.searchParams.get('prompt')]).toEqual(['mfa', 'login']);
    const atAuth = await g.send(start.location as string, { jar, headers: HTML });
    const authorize = new URL(atAuth.location as string);
    expect(authorize.origin).toBe(op.issuer); // the auth host's session is not enough: the IdP is asked
    expect([authorize.searchParams.get('acr_values'), authorize.searchParams.get('prompt')]).toEqual(['mfa', 'login']);
    const { callback } = await loginAtProvider(op, authorize.href, idpJar, { account: 'carol', otp: '123456' });
    const { last, trail } = await follow(g, callback, jar);
    expect(last.status).toBe(200);
    expect(trail.at(-1)).toBe(`${g.origin('a.localhost')}/admin/`);
    expect((await g.send(`${g.origin('b.localhost')}/app/`, { jar, headers: API })).status).toBe(200);
  });
});

describe('login.host needs an oidc provider', () => {
  it('is refused at load without one', async () => {
    const yaml = `listen: { address: 127.0.0.1:0, plaintext: true }
login: { host: a.localhost }
routes:
  - name: a
    match: { host: a.localhost, path: / }
    upstream: { url: ${up.url} }
    public: true
`;
    await expect(startGateway(yaml)).rejects.toThrow(/login\.host is where oidc logins happen/);
  });
});

describe('login.host over two instances sharing Redis', () => {
  it('a code minted by one instance is taken once by the other; a fleet logout on one ends sessions and WebSockets on the other', async () => {
    if (!redis.url) throw new Error('no Redis for the two-instance login fleet test');
    const state = `state: { redis: "${redis.url}" }`;
    const one = await fleet('fleet-two', { state });
    // The second instance is reached, as behind a balancer, under the first one's origins.
    const urls = ['auth.localhost', 'a.localhost', 'b.localhost'].map((h) => `https://${h}:${one.port}`);
    const two = await startFleetGateway(op, pki, { clientId: 'fleet-two', routes: fleetRoutes(up.url, echo.url), login: '{ host: auth.localhost }', state, publicUrls: urls, registered: true });
    gateways.push(two);
    const { jar } = await loginOnce(one);
    const code = await codeFor(one, 'b.localhost', jar);
    const onTwo = (url: string) => url.replace(`:${one.port}/`, `:${two.port}/`);
    const taken = await two.send(onTwo(`${one.origin('b.localhost')}/.zt/handoff?code=${code}`), { jar, headers: HTML });
    expect(taken.status).toBe(302);
    expect(taken.location).toBe('/app/');
    expect((await two.send(onTwo(`${one.origin('b.localhost')}/app/`), { jar, headers: API })).status).toBe(200);
    expect((await one.send(`${one.origin('b.localhost')}/app/`, { jar, headers: API })).status).toBe(200); // the session is in Redis
    expectRefused(one, await one.send(`${one.origin('b.localhost')}/.zt/handoff?code=${code}`, { jar, headers: HTML }), 'handoff_unknown');

    expect((await one.send(`${one.origin('auth.localhost')}/portal/`, { jar, headers: API })).status).toBe(200); // the auth host's own session
    const ws = await openLive(`wss://b.localhost:${one.port}/live/ws`, { ca: pki.ca, lookup: loopback, headers: { cookie: jar.header(`${one.origin('b.localhost')}/live`) as string } } as never);
    await ws.roundTrip('before');
    const since = Date.now();
    const out = await two.send(onTwo(`${one.origin('a.localhost')}/.zt/logout`), {
      jar,
      method: 'POST',
      headers: { ...HTML, 'sec-fetch-site': 'same-origin' },
    });
    expect(out.status).toBe(302);
    const closed = await closedWithin(ws, 1000, since);
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1008, reason: CLOSE_TEXT.logout });
    expect((await one.send(`${one.origin('b.localhost')}/app/`, { jar, headers: API })).status).toBe(401);
    expect((await one.send(`${one.origin('auth.localhost')}/portal/`, { jar, headers: API })).status).toBe(401);
  });
});
