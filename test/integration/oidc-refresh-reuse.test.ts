// A rotated refresh token is never presented twice, against a REAL OpenID Provider that rotates refresh
// tokens and revokes the whole grant on reuse (oidc-provider): a request that still carries the session
// cookie from one or two refreshes back (an old tab, a retry, a slow request) resolves to the session's
// current tokens, or refreshes them with the current, unspent, refresh token. Sealed cookies and Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';
import { redisForTests, type RedisServer } from '../helpers/redis.ts';
import { testClock, type TestClock } from '../helpers/wait.ts';
import { CookieJar, loginAtProvider, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
const JSON_ACCEPT = { accept: 'application/json' };

let pki: { ca: string; cert: string; key: string };
let op: TestOP;
let upstream: Upstream;
let redisServer: RedisServer | undefined;
let redisUrl: string;

const routes = (up: string) => `  - name: api
    match: { path: / }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    identity_headers: { pass_token: true }
`;

function authorizationAt(path: string): string[] {
  const rec: Received | undefined = upstream.received.filter((r) => r.url === path).at(-1);
  if (!rec) throw new Error(`the upstream never received ${path}`);
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if ((rec.rawHeaders[i] as string).toLowerCase() === 'authorization') out.push(rec.rawHeaders[i + 1] as string);
  return out;
}

const refreshes = () => op.tokenRequests.filter((t) => t.grantType === 'refresh_token');

beforeAll(async () => {
  const ca = await createCA('refresh reuse CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  pki = { ca: ca.cert, ...leaf };
  op = await startOidcProvider({ gatewayCa: ca.cert, accessTokenTtl: 2 });
  upstream = await startUpstream();
  ({ url: redisUrl, server: redisServer } = await redisForTests());
});

afterAll(async () => {
  await upstream?.close();
  await op?.close();
  await redisServer?.stop();
});

describe.each([
  ['sealed cookies (no Redis)', false],
  ['Redis sessions', true],
])('%s', (_name, withRedis) => {
  let g: OidcGateway;
  const clock: TestClock = testClock();

  beforeAll(async () => {
    g = await startOidcGateway(op, pki, {
      clientId: withRedis ? 'gw-reuse-redis' : 'gw-reuse',
      routes: routes(upstream.url),
      now: clock.now,
      ...(withRedis ? { state: `state: { redis: "${redisUrl}" }` } : {}),
    });
  });

  afterAll(async () => {
    await g?.close();
  });

  it('cookies from one and two refreshes back never present a spent refresh token; the grant survives', async () => {
    const jar = new CookieJar();
    const start = await g.send('/p0', { jar, headers: HTML });
    expect(start.status).toBe(302);
    const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account: 'bob' });
    expect((await g.send(callback.slice(g.origin.length), { jar, headers: HTML })).status).toBe(302);
    const c0 = jar.header(g.origin) as string;
    const r0 = await g.send('/p0', { jar, headers: JSON_ACCEPT });
    expect(r0.status).toBe(200);
    const count0 = refreshes().length;

    // Two refreshes, each carried by the browser's newest cookie.
    clock.advance(2300);
    expect((await g.send('/p1', { jar, headers: JSON_ACCEPT })).status).toBe(200);
    const c1 = jar.header(g.origin) as string;
    expect(c1).not.toBe(c0);
    clock.advance(2300);
    expect((await g.send('/p2', { jar, headers: JSON_ACCEPT })).status).toBe(200);
    const at2 = authorizationAt('/p2');
    expect(refreshes().length - count0).toBe(2);
    expect(refreshes().slice(count0).map((t) => t.status)).toEqual([200, 200]);

    // An old tab with the cookie from two refreshes back, and a retry with the one from one refresh back:
    // served with the current access token, no refresh-token request at all.
    const old2 = await g.send('/old2', { cookie: c0, headers: JSON_ACCEPT });
    expect(old2.status, old2.text).toBe(200);
    expect(authorizationAt('/old2')).toEqual(at2);
    const old1 = await g.send('/old1', { cookie: c1, headers: JSON_ACCEPT });
    expect(old1.status).toBe(200);
    expect(authorizationAt('/old1')).toEqual(at2);
    expect(refreshes().length - count0).toBe(2);

    // Due again: the old cookie is what arrives first. The gateway refreshes with the current refresh
    // token (never the one c0 carries), and the newest cookie keeps working: the grant was not revoked.
    clock.advance(2300);
    const late = await g.send('/late', { cookie: c0, headers: JSON_ACCEPT });
    expect(late.status, late.text).toBe(200);
    expect(refreshes().length - count0).toBe(3);
    const at3 = authorizationAt('/late');
    expect(at3).not.toEqual(at2);
    const now = await g.send('/now', { jar, headers: JSON_ACCEPT });
    expect(now.status).toBe(200);
    expect(authorizationAt('/now')).toEqual(at3);
    // One more round on the newest cookie: still refreshable (a reused token would have revoked the grant).
    clock.advance(2300);
    expect((await g.send('/again', { jar, headers: JSON_ACCEPT })).status).toBe(200);
    expect(refreshes().slice(count0).map((t) => t.status)).toEqual([200, 200, 200, 200]);
    // And the oldest cookie of all still resolves to the live session.
    expect((await g.send('/oldest', { cookie: c0, headers: JSON_ACCEPT })).status).toBe(200);
    expect(authorizationAt('/oldest')).toEqual(authorizationAt('/again'));
    expect(refreshes().slice(count0).every((t) => t.status === 200)).toBe(true);
  });
});
