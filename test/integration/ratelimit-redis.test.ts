// Rate limits in Redis: shared by gateway instances; when Redis dies, per-instance memory insurance keeps
// serving (never a 500) and the gateway says so in its log; when it returns, the limits are shared again.
// Uses its own redis-server (it is killed mid-test), never the shared one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { IN_CI, redisServerAvailable, startRedis, type RedisServer } from '../helpers/redis.ts';
import { freePort, waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const available = redisServerAvailable(); // throws under CI=true when redis-server is missing
if (!available && !IN_CI) console.warn('ratelimit-redis.test.ts: redis-server is not installed here; skipping the Redis rate-limit tests');

const config = (redisUrl: string, upstream: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
state: { redis: "${redisUrl}" }
rate_limits: { pre_auth: { per: ip, limit: 1000, window: 1m } }
routes:
  - name: shared
    match: { path: / }
    upstream: { url: ${upstream}, timeout: 2s, connect_timeout: 1s }
    public: true
    rate_limit: { per: route, limit: 4, window: 1m }
`;

async function get(gw: TestGateway, path: string): Promise<{ status: number; headers: Record<string, unknown>; code?: string }> {
  const res = await request(`${gw.url}${path}`);
  const text = await res.body.text();
  const code = res.statusCode === 200 ? undefined : (JSON.parse(text) as { code: string }).code;
  return { status: res.statusCode, headers: res.headers, code };
}

function expectLimited(a: { status: number; headers: Record<string, unknown>; code?: string }): void {
  expect(a.status).toBe(429);
  expect(a.code).toBe('GW_ERR_RATE_LIMITED');
  expect(a.headers['ratelimit-policy']).toBe('"shared";q=4;w=60');
  expect(a.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  expect(Number(a.headers['retry-after'])).toBeLessThanOrEqual(60);
}

const redisReady = (gw: TestGateway) => gw.gateway.runtime.redis?.status === 'ready';
const logged = (gw: TestGateway, text: string) => gw.logs.some((l) => typeof l.msg === 'string' && l.msg.includes(text));

describe.skipIf(!available)('rate limits in Redis', () => {
  let redis: RedisServer;
  let upstream: Upstream;
  let a: TestGateway;
  let b: TestGateway;
  let client: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startUpstream();
    a = await startGateway(config(redis.url, upstream.url));
    b = await startGateway(config(redis.url, upstream.url));
    await waitFor(() => redisReady(a) && redisReady(b), { timeoutMs: 5000 });
    client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    client.on('error', () => undefined);
    await client.connect();
  });
  afterAll(async () => {
    client?.disconnect();
    await a?.close();
    await b?.close();
    await upstream?.close();
    await redis?.stop();
  });

  it('shares one limit between two gateway instances', async () => {
    expect((await get(a, '/a1')).status).toBe(200);
    expect((await get(b, '/b1')).status).toBe(200);
    expect((await get(a, '/a2')).status).toBe(200);
    expect((await get(b, '/b2')).status).toBe(200);
    const before = upstream.received.length;
    expectLimited(await get(a, '/a3'));
    expectLimited(await get(b, '/b3'));
    expect(upstream.received.length).toBe(before);
    // The counter really lives in Redis, under the gateway's prefix, with the window as its TTL.
    const keys = await client.keys('ztgw:rl:*');
    expect(keys).toContain('ztgw:rl:route:shared:route:4:60:route');
    expect(Number(await client.get('ztgw:rl:route:shared:route:4:60:route'))).toBeGreaterThanOrEqual(4);
    const ttl = await client.pttl('ztgw:rl:route:shared:route:4:60:route');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('keeps serving with per-instance memory limits when Redis is killed, and logs it', async () => {
    await redis.stop();
    await waitFor(() => logged(a, 'redis unavailable') && logged(b, 'redis unavailable'), { timeoutMs: 5000 });
    const warning = a.logs.find((l) => typeof l.msg === 'string' && l.msg.includes('redis unavailable'));
    expect(warning?.level).toBe('warn');
    expect(warning?.redis).toBe(`redis://127.0.0.1:${redis.port}/0`);

    // Instance a: its own insurance bucket of 4, then 429 — never a 500.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(a, `/down-a${i}`)).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(upstream.received.at(-1)?.url).toBe('/down-a3');
    expectLimited(await get(a, '/down-a4'));
    // Instance b has its own bucket: the limits are per instance now.
    for (let i = 0; i < 4; i++) expect((await get(b, `/down-b${i}`)).status).toBe(200);
    expectLimited(await get(b, '/down-b4'));
    expect(a.logs.some((l) => l.status === 500 || l.code === 'GW_ERR_INTERNAL')).toBe(false);
    expect(b.logs.some((l) => l.status === 500 || l.code === 'GW_ERR_INTERNAL')).toBe(false);
  });

  it('shares the limit again once Redis is back', async () => {
    redis = await startRedis(redis.port);
    await waitFor(() => redisReady(a) && redisReady(b), { timeoutMs: 8000 });
    expect(logged(a, 'redis is back')).toBe(true);
    // A fresh Redis: a new shared window of 4.
    expect((await get(a, '/up-a1')).status).toBe(200);
    expect((await get(b, '/up-b1')).status).toBe(200);
    expect((await get(a, '/up-a2')).status).toBe(200);
    expect((await get(b, '/up-b2')).status).toBe(200);
    expectLimited(await get(b, '/up-b3'));
    expectLimited(await get(a, '/up-a3'));
  });
});

describe.skipIf(!available)('Redis unreachable from the start', () => {
  let upstream: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startUpstream();
    const port = await freePort(); // nothing listens there
    gw = await startGateway(config(`redis://127.0.0.1:${port}/0`, upstream.url));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('serves with memory limits and warns, never 500', async () => {
    await waitFor(() => logged(gw, 'redis unavailable'), { timeoutMs: 5000 });
    for (let i = 0; i < 4; i++) expect((await get(gw, `/n${i}`)).status).toBe(200);
    expectLimited(await get(gw, '/n4'));
    expect(redisReady(gw)).toBe(false);
  });
});
