// POST /admin/v1/subjects/{sub}/revoke-sessions against real OIDC logins (panva's oidc-provider on loopback):
// sealed-cookie sessions (memory) and Redis sessions both end at once; other subjects keep theirs; a new
// login afterwards works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { ADMIN_TOKEN, ADMIN_TOKEN_HASH } from '../helpers/access.ts';
import { IN_CI, redisServerAvailable, startRedis, type RedisServer } from '../helpers/redis.ts';
import { CookieJar, loginAtProvider, send, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const available = redisServerAvailable();
if (!available && !IN_CI) console.warn('revoke-sessions.test.ts: redis-server is not installed here; the Redis case is skipped');

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
const API = { accept: 'application/json' };
let pki: { ca: string; cert: string; key: string };
let op: TestOP;
let upstream: Upstream;
let redis: RedisServer | undefined;
const gateways: OidcGateway[] = [];

const routes = (up: string) => `  - name: app
    match: { path: /app }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;

beforeAll(async () => {
  const ca = await createCA('revoke-sessions test CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  pki = { ca: ca.cert, ...leaf };
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  if (available) redis = await startRedis();
});

afterAll(async () => {
  for (const g of gateways) await g.close();
  await upstream?.close();
  await op?.close();
  await redis?.stop();
});

async function gateway(clientId: string, state = ''): Promise<OidcGateway> {
  const g = await startOidcGateway(op, pki, { clientId, state: `admin: { listen: 127.0.0.1:0, token_hash: "${ADMIN_TOKEN_HASH}" }\n${state}`, routes: routes(upstream.url) });
  gateways.push(g);
  return g;
}

async function login(g: OidcGateway, account: string): Promise<CookieJar> {
  const jar = new CookieJar();
  const start = await g.send('/app/', { jar, headers: HTML });
  expect(start.status).toBe(302);
  const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account });
  const cb = await g.send(callback.slice(g.origin.length), { jar, headers: HTML });
  expect(cb.status).toBe(302);
  return jar;
}

async function revoke(g: OidcGateway, sub: string) {
  const r = await send(`${g.gw.gateway.adminUrl}/admin/v1/subjects/${sub}/revoke-sessions`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(r.status).toBe(200);
  return r.json as { subject: string; sessions_ended: number };
}

async function scenario(g: OidcGateway): Promise<number> {
  const bob = await login(g, 'bob');
  const mallory = await login(g, 'mallory');
  expect((await g.send('/app/x', { jar: bob, headers: API })).status).toBe(200);
  const before = upstream.received.length;
  const { sessions_ended } = await revoke(g, 'bob');
  const after = await g.send('/app/x', { jar: bob, headers: API });
  expect({ status: after.status, code: after.json?.code }).toEqual({ status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
  expect((await g.send('/app/x', { jar: bob, headers: HTML })).status).toBe(302); // a browser is sent to log in again
  expect(upstream.received.length).toBe(before);
  expect((await g.send('/app/x', { jar: mallory, headers: API })).status).toBe(200);
  const again = await login(g, 'bob');
  expect((await g.send('/app/x', { jar: again, headers: API })).status).toBe(200);
  return sessions_ended;
}

describe('revoke-sessions', () => {
  it('ends sealed-cookie sessions (memory state): the old cookie no longer authenticates', async () => {
    const g = await gateway('gw-revoke-mem');
    expect(await scenario(g)).toBe(0); // sealed sessions are listed nowhere: the count is unknown
  });

  it.skipIf(!available)('ends Redis sessions (and says how many)', async () => {
    const g = await gateway('gw-revoke-redis', `state: { redis: "${redis?.url}" }`);
    expect(await scenario(g)).toBe(1);
  });
});
