// Behaviour profiles and failure counts in Redis (state.redis): two gateway instances share them, so a
// subject learned on one is scored on the other. When Redis dies, each instance keeps scoring from its own
// memory copy (never a 500, never a crash). Uses its own redis-server (stopped mid-test).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { GEOIP_V4, IP_DE, IP_GB, IP_JP } from '../helpers/geoip.ts';
import { signHs256 } from '../helpers/idp.ts';
import { IN_CI, redisServerAvailable, startRedis, type RedisServer } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const available = redisServerAvailable(); // throws under CI=true when redis-server is missing
if (!available && !IN_CI) console.warn('risk-redis.test.ts: redis-server is not installed here; skipping');

const SECRET = `risk-redis-${randomBytes(16).toString('hex')}`;
const ISSUER = 'https://idp.risk-redis.test';
const config = (redisUrl: string, up: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
trusted_proxies: [127.0.0.1/32]
identity_headers: { assertion: false }
log: { access: false }
state: { redis: "${redisUrl}" }
risk:
  geoip_db: "${GEOIP_V4}"
  weights: { new_ip: 0.11, new_country: 0.12, impossible_travel: 0.5, unknown_device: 0.13, auth_failures: 0.14 }
  learning: { requests: 2, period: 0s }
identity_providers:
  corp: { type: jwt, issuer: ${ISSUER}, audiences: [gw], algorithms: [HS256], secret: "\${env:SECRET}" }
routes:
  - name: api
    match: { path: / }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize:
      allow: [{ authenticated: true }]
      deny: [{ name: too-risky, risk_above: 0.8 }]
`;

let redis: RedisServer;
let client: Redis;
let upstream: Upstream;
let a: TestGateway;
let b: TestGateway;

beforeAll(async () => {
  if (!available) return;
  redis = await startRedis();
  client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  upstream = await startUpstream();
  a = await startGateway(config(redis.url, upstream.url), { env: { SECRET } });
  b = await startGateway(config(redis.url, upstream.url), { env: { SECRET } });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  client?.disconnect();
  await upstream?.close();
  await redis?.stop();
});

async function call(gw: TestGateway, o: { sub?: string; bearer?: string; xff: string; ua?: string }) {
  const bearer = o.bearer ?? (await signHs256(SECRET, ISSUER, o.sub ?? 'x'));
  const res = await request(`${gw.url}/x`, { headers: { authorization: `Bearer ${bearer}`, 'x-forwarded-for': o.xff, 'user-agent': o.ua ?? 'Firefox/140' } });
  await res.body.text();
  const id = res.headers['x-request-id'] as string;
  await waitFor(() => gw.logs.some((l) => l.audit === true && l.request_id === id));
  const record = gw.logs.find((l) => l.audit === true && l.request_id === id) as { risk?: { score: number; signals: Array<{ name: string }> } };
  return { status: res.statusCode, signals: (record.risk?.signals ?? []).map((s) => s.name).sort(), score: record.risk?.score };
}

const seen = async (sub: string) => {
  const text = await client.get(`ztgw:risk:profile:corp:${sub}`);
  return text === null ? 0 : (JSON.parse(text) as { seen: number }).seen;
};

describe.skipIf(!available)('risk profiles in Redis', () => {
  it('a profile learned on instance A scores requests on instance B', async () => {
    for (let i = 0; i < 2; i++) expect((await call(a, { sub: 'shared', xff: IP_GB })).status).toBe(200);
    await waitFor(async () => (await seen('shared')) >= 2, { timeoutMs: 1000, intervalMs: 25, what: 'the shared profile to record 2 requests' });
    expect(await seen('shared')).toBe(2);
    const onB = await call(b, { sub: 'shared', xff: IP_DE });
    // Without the shared profile B would know nothing (learning: no signals at all).
    expect(onB.signals).toEqual(['impossible_travel', 'new_country', 'new_ip']);
    expect(onB.status).toBe(200);
    const denied = await call(b, { sub: 'shared', xff: IP_JP, ua: 'curl/8' });
    expect(denied.status).toBe(403);
    expect(denied.score).toBe(0.86);
  });

  it('authentication failures counted on A raise the score on B', async () => {
    const ip = '10.20.30.40';
    for (let i = 0; i < 2; i++) await call(a, { sub: 'failing', xff: ip });
    const forged = await signHs256(`wrong-${SECRET}`, ISSUER, 'failing');
    for (let i = 0; i < 3; i++) expect((await call(a, { bearer: forged, xff: ip })).status).toBe(401);
    const count = async () => Number(await client.get(`ztgw:risk:fail:${ip}`));
    await waitFor(async () => (await count()) >= 3, { timeoutMs: 1000, intervalMs: 25, what: 'the failure counter to reach 3' });
    expect(await count()).toBe(3);
    expect(await client.pttl(`ztgw:risk:fail:${ip}`)).toBeGreaterThan(0);
    expect((await call(b, { sub: 'failing', xff: ip })).signals).toEqual(['auth_failures']);
  });

  it('Redis down: each instance scores from its memory copy; no 500, no crash', async () => {
    await redis.stop();
    // A learned "shared" in memory (GB): Tokyo with another browser is still denied there.
    const r = await call(a, { sub: 'shared', xff: IP_JP, ua: 'curl/8' });
    expect(r.status).toBe(403);
    expect(r.signals).toEqual(['impossible_travel', 'new_country', 'new_ip', 'unknown_device']);
    // B's memory copy is what it last admitted (the Redis profile plus Frankfurt): from there, nothing new.
    const onB = await call(b, { sub: 'shared', xff: IP_DE });
    expect(onB.status).toBe(200);
    expect(onB.signals).toEqual([]);
    // A subject neither instance has seen is scored as a new profile (learning), not refused with a 500.
    expect(await call(b, { sub: 'stranger', xff: IP_JP })).toMatchObject({ status: 200, score: 0 });
  });
});
