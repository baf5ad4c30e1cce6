// Live connections follow the session that admitted them (real OIDC logins at panva's oidc-provider, a `ws`
// echo upstream, Redis): a WebSocket opened with the session cookie is closed within 1 s of /.zt/logout,
// back-channel logout, revoke-sessions and the session's idle timeout; with Redis, a logout on one instance
// closes the socket relayed by another. A live connection that carries traffic keeps its session from going
// idle. Other sessions' sockets stay open.
import http2 from 'node:http2';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { createSealer } from '../../src/authn/oidc/sealed.ts';
import { ADMIN_TOKEN, ADMIN_TOKEN_HASH } from '../helpers/access.ts';
import { CookieJar, loginAtProvider, send, SESSION_SECRET, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';
import { closeAllLive, closedWithin, openLive, startEchoUpstream, type EchoUpstream, type LiveClient } from '../helpers/live.ts';
import { redisForTests, type RedisServer } from '../helpers/redis.ts';
import { sleep, testClock, waitFor, type TestClock } from '../helpers/wait.ts';
import { TICK_MS } from '../../src/server/live-triggers.ts';
import { CLOSE_TEXT, type EndReason } from '../../src/live/index.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
const API = { accept: 'application/json' };
let pki: { ca: string; cert: string; key: string };
let op: TestOP;
let up: EchoUpstream;
let redis: { url: string | undefined; server: RedisServer | undefined };
const gateways: OidcGateway[] = [];

const routes = (upstream: string) => `  - name: app
    match: { path: /app }
    upstream: { url: ${upstream} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;
const adminBlock = `admin: { listen: 127.0.0.1:0, token_hash: "${ADMIN_TOKEN_HASH}" }`;

beforeAll(async () => {
  const ca = await createCA('live-sessions test CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  pki = { ca: ca.cert, ...leaf };
  op = await startOidcProvider({ gatewayCa: ca.cert });
  up = await startEchoUpstream();
  redis = await redisForTests();
});

afterEach(() => closeAllLive());

afterAll(async () => {
  for (const g of gateways) await g.close();
  await up?.close();
  await op?.close();
  await redis?.server?.stop();
});

async function gateway(clientId: string, opts: { state?: string; session?: string; now?: () => number; sameClientAs?: OidcGateway } = {}): Promise<OidcGateway> {
  const g = await startOidcGateway(op, pki, { clientId, routes: routes(up.url), state: `${adminBlock}\n${opts.state ?? ''}`, ...opts });
  gateways.push(g);
  return g;
}

async function login(g: OidcGateway, account: string): Promise<CookieJar> {
  const jar = new CookieJar();
  const start = await g.send('/app/', { jar, headers: HTML });
  expect(start.status).toBe(302);
  const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account });
  expect((await g.send(callback.slice(g.origin.length), { jar, headers: HTML })).status).toBe(302);
  return jar;
}

/** A WebSocket through `g` carrying the session cookie of `jar` (issued by `from`), proven live by one echo. */
async function connect(g: OidcGateway, jar: CookieJar, from: OidcGateway = g): Promise<LiveClient> {
  const cookie = jar.header(`${from.origin}/app/`) as string;
  const c = await openLive(`wss://127.0.0.1:${g.gw.port}/app/ws`, { ca: pki.ca, servername: 'localhost', headers: { cookie } });
  await c.roundTrip('hello');
  return c;
}

async function logout(g: OidcGateway, jar: CookieJar): Promise<void> {
  const r = await g.send('/.zt/logout', { jar, method: 'POST', headers: { ...HTML, 'sec-fetch-site': 'same-origin', origin: g.origin } });
  expect(r.status).toBe(302);
}

/** Closed within 1 s with a 1008 close frame naming the reason. */
async function expectClosedSoon(c: LiveClient, since: number, reason: EndReason = 'logout'): Promise<void> {
  const closed = await closedWithin(c, 1000, since);
  expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 1008, reason: CLOSE_TEXT[reason] });
  expect(closed.afterMs).toBeLessThan(1000);
}

describe('session ends (sealed-cookie sessions, one instance)', () => {
  let g: OidcGateway;
  beforeAll(async () => {
    g = await gateway('gw-live-mem');
  });

  it('/.zt/logout closes that session’s WebSocket within 1 s; another user’s stays open', async () => {
    const bob = await login(g, 'bob');
    const mallory = await login(g, 'mallory');
    const bobWs = await connect(g, bob);
    const malloryWs = await connect(g, mallory);
    const since = Date.now();
    await logout(g, bob);
    await expectClosedSoon(bobWs, since);
    await malloryWs.roundTrip('unaffected by bob’s logout');
    expect((await g.send('/app/x', { jar: mallory, headers: API })).status).toBe(200);
  });

  it('an SSE response still streaming is aborted within 1 s of logout (and the upstream request with it)', async () => {
    const bob = await login(g, 'bob');
    // HTTP/1.1 here (undici's HTTP/2 client reads a reset stream without Content-Length as a clean end); the
    // HTTP/2 reset is checked with node's own client below.
    const h1 = new Agent({ allowH2: false, connect: { ca: pki.ca, servername: 'localhost' } });
    const res = await request(`https://127.0.0.1:${g.gw.port}/app/events`, { dispatcher: h1, headers: { host: new URL(g.origin).host, cookie: bob.header(`${g.origin}/app/`) as string, accept: 'text/event-stream' } });
    expect(res.statusCode).toBe(200);
    const upstream = up.streams.at(-1);
    const seen: string[] = [];
    let ended: { how: 'end' | 'error'; at: number } | undefined;
    res.body.on('data', (c: Buffer) => seen.push(c.toString('utf8')));
    res.body.on('end', () => (ended ??= { how: 'end', at: Date.now() }));
    res.body.on('error', () => (ended ??= { how: 'error', at: Date.now() }));
    await waitFor(() => seen.join('').includes('data: hello'), { what: 'the first event' });
    const since = Date.now();
    await logout(g, bob);
    const end = await waitFor(() => ended, { timeoutMs: 1000, what: 'the stream to be aborted' });
    expect(end.how).toBe('error'); // aborted, not a clean end a client could take for the whole answer
    expect(end.at - since).toBeLessThan(1000);
    await waitFor(() => upstream?.closed, { timeoutMs: 1000, what: 'the upstream request to be closed' });
    await h1.close();
  });

  it('over HTTP/2 the aborted SSE stream is reset with CANCEL, never ended cleanly', async () => {
    const bob = await login(g, 'bob');
    const session = http2.connect(`https://127.0.0.1:${g.gw.port}`, { ca: pki.ca, servername: 'localhost' });
    try {
      const stream = session.request({ ':path': '/app/events', ':authority': new URL(g.origin).host, cookie: bob.header(`${g.origin}/app/`) as string, accept: 'text/event-stream' });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      const closed = new Promise<number>((resolve) => stream.on('close', () => resolve(stream.rstCode ?? -1)));
      stream.on('error', () => undefined); // the reset surfaces as an error too; its code is what is checked
      await waitFor(() => body.includes('data: hello'), { what: 'the first event over h2' });
      const since = Date.now();
      await logout(g, bob);
      expect(await closed).toBe(http2.constants.NGHTTP2_CANCEL);
      expect(Date.now() - since).toBeLessThan(1000);
    } finally {
      session.destroy();
    }
  });

  it('back-channel logout (the provider ends the IdP session by sid) closes it within 1 s', async () => {
    const bob = await login(g, 'bob');
    const carol = await login(g, 'carol');
    const bobWs = await connect(g, bob);
    const carolWs = await connect(g, carol);
    const sealed = await createSealer([SESSION_SECRET]).open(bob.get(g.origin, '__Host-zt') as string, 'session');
    expect(sealed?.sid).toMatch(/.+/);
    const since = Date.now();
    await op.backchannelLogout(g.clientId, 'bob', sealed?.sid as string); // throws unless the gateway answers 200
    await expectClosedSoon(bobWs, since);
    await carolWs.roundTrip('another IdP session');
  });

  it('revoke-sessions (admin API) closes the subject’s WebSockets within 1 s; others stay', async () => {
    const bob = await login(g, 'bob');
    const mallory = await login(g, 'mallory');
    const bobWs = await connect(g, bob);
    const malloryWs = await connect(g, mallory);
    const since = Date.now();
    const r = await send(`${g.gw.gateway.adminUrl}/admin/v1/subjects/bob/revoke-sessions`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.status).toBe(200);
    await expectClosedSoon(bobWs, since);
    await malloryWs.roundTrip('not revoked');
  });

  it('an unrelated logout leaves the connection open', async () => {
    const bob = await login(g, 'bob');
    const carol = await login(g, 'carol');
    const bobWs = await connect(g, bob);
    await logout(g, carol);
    await sleep(2 * TICK_MS); // the ticker has run: nothing it does may end bob's socket
    await bobWs.roundTrip('carol logged out, not bob');
    expect(bobWs.closed).toBeUndefined();
  });
});

describe('session idle timeout (test clock; idle_timeout 10m)', () => {
  let g: OidcGateway;
  let clock: TestClock;
  beforeAll(async () => {
    clock = testClock();
    g = await gateway('gw-live-idle', { session: 'idle_timeout: 10m, ttl: 8h', now: clock.now });
  });

  /** Lets the ticker look at the connections (real time: the socket counters it compares are real). */
  const tick = () => sleep(2 * TICK_MS);

  it('a silent connection closes within 1 s of its session’s idle timeout', async () => {
    const bob = await login(g, 'bob');
    const ws = await connect(g, bob);
    await tick();
    clock.advance(10 * 60_000 + 1000);
    const since = Date.now();
    await expectClosedSoon(ws, since, 'expired');
    expect((await g.send('/app/x', { jar: bob, headers: API })).status).toBe(401);
  });

  it('traffic on the connection, or a request with the session, keeps it (and the session) from going idle', async () => {
    const bob = await login(g, 'bob');
    const ws = await connect(g, bob);
    await tick();
    clock.advance(6 * 60_000);
    await ws.roundTrip('activity at 6 min');
    await tick(); // the ticker sees the bytes and touches the session
    clock.advance(6 * 60_000); // 12 min after login: idle by the cookie, not by the connection
    await tick();
    expect(ws.closed).toBeUndefined();
    // The session itself was kept alive by the connection: a request with the original cookie is admitted.
    expect((await g.send('/app/x', { jar: bob, headers: API })).status).toBe(200);
    clock.advance(6 * 60_000); // 18 min: 12 min since the connection's traffic, 6 since that request
    await tick();
    await tick();
    expect(ws.closed).toBeUndefined();
    clock.advance(5 * 60_000); // 23 min: 11 min without any use
    const since = Date.now();
    await expectClosedSoon(ws, since, 'expired');
  });
});

describe('session absolute ttl (test clock; idle_timeout 10m, ttl 15m)', () => {
  it('a busy connection still closes within 1 s of its session’s absolute ttl', async () => {
    const clock = testClock();
    const g = await gateway('gw-live-ttl', { session: 'idle_timeout: 10m, ttl: 15m', now: clock.now });
    const bob = await login(g, 'bob');
    const ws = await connect(g, bob);
    for (const minute of [6, 12]) {
      clock.advance(6 * 60_000);
      await ws.roundTrip(`activity at ${minute} min`);
      await sleep(2 * TICK_MS);
    }
    expect(ws.closed).toBeUndefined(); // traffic kept it from going idle
    clock.advance(3 * 60_000 + 1000); // 15 min and a second after the login
    const since = Date.now();
    await expectClosedSoon(ws, since, 'expired');
  });
});

describe('several instances sharing Redis', () => {
  it('a logout on instance A closes the WebSocket relayed by instance B within 1 s', async () => {
    expect(redis.url, 'Redis is needed (CI=true refuses to run without it)').toBeDefined();
    const state = `state: { redis: "${redis.url}" }`;
    const a = await gateway('gw-live-redis', { state });
    const b = await gateway('gw-live-redis', { state, sameClientAs: a });
    const bob = await login(a, 'bob');
    const mallory = await login(a, 'mallory');
    const onB = await connect(b, bob, a);
    const malloryOnB = await connect(b, mallory, a);
    const since = Date.now();
    await logout(a, bob);
    await expectClosedSoon(onB, since);
    await malloryOnB.roundTrip('still logged in');
    await waitFor(async () => (await b.send('/app/x', { cookie: bob.header(`${a.origin}/app/`) as string, headers: API })).status === 401, { what: 'B to refuse the ended session' });
  });
});
