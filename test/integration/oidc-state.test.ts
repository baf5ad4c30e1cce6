// The relying party's state against a real OpenID Provider: one token refresh for a session shared by two
// gateway instances on one Redis (the second woken by the first's release, not by polling), and the
// stateful parts (sealed-cookie revocations, IdP discovery and JWKS) kept across a reload that leaves the
// OIDC config alone, rebuilt when the provider changes.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createCA } from '../../tools/pki.ts';
import { createSealer } from '../../src/authn/oidc/sealed.ts';
import { MAX_WAIT_MS } from '../../src/authn/oidc/refresh-lock.ts';
import { startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';
import { redisForTests, type RedisServer } from '../helpers/redis.ts';
import { testClock } from '../helpers/wait.ts';
import {
  CookieJar,
  loginAtProvider,
  send,
  SESSION_SECRET,
  startOidcGateway,
  startOidcProvider,
  type OidcGateway,
  type TestOP,
} from '../helpers/oidc-provider.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
const JSON_ACCEPT = { accept: 'application/json' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

const routes = (up: string) => `  - name: api-token
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

let pki: { ca: string; cert: string; key: string };
let op: TestOP;
let upstream: Upstream;
let jwksPath = '';
/** Requests the provider received, by path (discovery and JWKS are what a kept client does not repeat). */
const count = (path: string) => op.served.get(path) ?? 0;

interface Browser {
  jar: CookieJar;
  idp: CookieJar;
}
const browser = (): Browser => ({ jar: new CookieJar(), idp: new CookieJar() });

async function login(g: OidcGateway, b: Browser, path: string, account: string): Promise<string> {
  const start = await g.send(path, { jar: b.jar, headers: HTML });
  expect(start.status).toBe(302);
  const { callback } = await loginAtProvider(op, start.location as string, b.idp, { account });
  const cb = await g.send(callback.slice(g.origin.length), { jar: b.jar, headers: HTML });
  expect(cb.status, cb.text).toBe(302);
  return b.jar.get(g.origin, '__Host-zt') as string;
}

function bearerOf(path: string): string[] {
  const rec: Received | undefined = upstream.received.filter((r) => r.url === path).at(-1);
  if (!rec) throw new Error(`the upstream never received ${path}`);
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if ((rec.rawHeaders[i] as string).toLowerCase() === 'authorization') out.push(rec.rawHeaders[i + 1] as string);
  return out;
}

const refreshes = () => op.tokenRequests.filter((t) => t.grantType === 'refresh_token').length;

beforeAll(async () => {
  const ca = await createCA('oidc state test CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  pki = { ca: ca.cert, ...leaf };
  op = await startOidcProvider({ gatewayCa: ca.cert });
  jwksPath = new URL((await send(`${op.issuer}/.well-known/openid-configuration`)).json.jwks_uri as string).pathname;
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
  await op?.close();
});

describe('refresh shared by two instances on Redis', () => {
  let redisServer: RedisServer | undefined;
  let redisUrl: string | undefined;
  let redis: Redis | undefined;
  let a: OidcGateway | undefined;
  let b: OidcGateway | undefined;
  // Both instances read one clock: the test moves it past the access token's expiry instead of sleeping.
  const pairClock = testClock();

  beforeAll(async () => {
    ({ url: redisUrl, server: redisServer } = await redisForTests());
    if (!redisUrl) return;
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    const state = `state: { redis: "${redisUrl}" }`;
    a = await startOidcGateway(op, pki, { clientId: 'gw-pair', state, routes: routes(upstream.url), now: pairClock.now });
    b = await startOidcGateway(op, pki, { clientId: 'gw-pair', state, routes: routes(upstream.url), sameClientAs: a, now: pairClock.now });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    redis?.disconnect();
    await redisServer?.stop();
  });

  it('concurrent requests with one session at both instances: the IdP token endpoint is hit exactly once', async (ctx) => {
    if (!a || !b || !redis) return ctx.skip(); // only outside CI, without any Redis
    op.accessTokenTtl = 2;
    try {
      const cookie = await login(a, browser(), '/api-token/p0', 'bob');
      const id = (await createSealer([SESSION_SECRET]).open(cookie, 'sid'))?.id as string;
      pairClock.advance(2300); // the access token has expired
      const before = refreshes();
      const startedAt = Date.now();
      const replies = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a! : b!).send(`/api-token/p${i + 1}`, { headers: JSON_ACCEPT, cookie: `__Host-zt=${cookie}` })),
      );
      const took = Date.now() - startedAt;
      for (const r of replies) expect(r.status, r.text).toBe(200);
      expect(refreshes() - before).toBe(1);
      expect(op.tokenRequests.at(-1)).toMatchObject({ grantType: 'refresh_token', clientId: 'gw-pair', status: 200 });
      const stored = JSON.parse((await redis.get(`ztgw:sess:${id}`)) as string) as { accessToken: string };
      for (let i = 1; i <= 8; i++) expect(bearerOf(`/api-token/p${i}`)).toEqual([`Bearer ${stored.accessToken}`]);
      // The waiting instance was woken by the release, not by its MAX_WAIT_MS bound.
      expect(took).toBeLessThan(MAX_WAIT_MS);
      expect(await redis.exists(`ztgw:sess:lock:${id}`)).toBe(0);
    } finally {
      op.accessTokenTtl = 600;
    }
  });
});

describe('relying party state across reloads', () => {
  let g: OidcGateway;

  beforeAll(async () => {
    g = await startOidcGateway(op, pki, { clientId: 'gw-reload', routes: routes(upstream.url) });
  });

  afterAll(async () => {
    await g?.close();
  });

  async function rewrite(change: (yaml: string) => string): Promise<void> {
    const file = g.gw.configFile;
    const before = readFileSync(file, 'utf8');
    const after = change(before);
    expect(after).not.toBe(before);
    writeFileSync(file, after);
    expect(await g.gw.gateway.reload()).toBe(true);
  }

  async function sidOf(cookie: string): Promise<string> {
    return (await createSealer([SESSION_SECRET]).open(cookie, 'session'))?.sid as string;
  }

  const status = async (cookie: string) => (await g.send('/page', { headers: HTML, cookie: `__Host-zt=${cookie}` })).status;

  it('a reload that leaves the OIDC config alone keeps revocations, discovery and JWKS; a changed provider is rebuilt', async () => {
    const live = await login(g, browser(), '/page', 'alice');
    const loggedOut = browser();
    const loggedOutCookie = await login(g, loggedOut, '/page', 'bob');
    expect((await g.send('/.zt/logout', { method: 'POST', jar: loggedOut.jar })).status).toBe(302);
    const ended = await login(g, browser(), '/page', 'carol');
    const bc = await g.send('/.zt/backchannel-logout', {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ logout_token: await op.logoutToken('gw-reload', { sid: await sidOf(ended) }) }).toString(),
    });
    expect(bc.status, bc.text).toBe(200);
    expect([await status(live), await status(loggedOutCookie), await status(ended)]).toEqual([200, 302, 302]);
    const discovery0 = count('/.well-known/openid-configuration');
    const jwks0 = count(jwksPath);
    expect(jwks0).toBeGreaterThan(0);

    await rewrite((y) => y.replace('drain_timeout: 1s', 'drain_timeout: 2s')); // not an OIDC change
    // Sealed-cookie revocations live in the kept store: logged-out sessions stay dead, live ones live.
    expect([await status(live), await status(loggedOutCookie), await status(ended)]).toEqual([200, 302, 302]);
    const next = await login(g, browser(), '/page', 'mallory');
    const bc2 = await g.send('/.zt/backchannel-logout', {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ logout_token: await op.logoutToken('gw-reload', { sid: await sidOf(next) }) }).toString(),
    });
    expect(bc2.status, bc2.text).toBe(200);
    expect(count('/.well-known/openid-configuration')).toBe(discovery0); // the kept client: no new discovery
    expect(count(jwksPath)).toBe(jwks0); // the kept key source: no new JWKS fetch

    await rewrite((y) => y.replace('timeout: 5s }', 'timeout: 6s }')); // the provider changed: a new client
    await login(g, browser(), '/page', 'bob');
    expect(count('/.well-known/openid-configuration')).toBe(discovery0 + 1);
    expect([await status(live), await status(loggedOutCookie)]).toEqual([200, 302]); // the store is still the same
  });
});
