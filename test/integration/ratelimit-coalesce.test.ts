// Redis limits count the requests of one event-loop turn with one consume(key, n): the counter must move
// exactly as n single consumes would, and exactly the requests that fit the limit may pass — also when a
// burst from two gateway instances straddles the limit. Real redis-server of its own, real gateways.
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoalescedConsumer } from '../../src/ratelimit/coalesce.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { IN_CI, redisServerAvailable, startRedis, type RedisServer } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const available = redisServerAvailable(); // throws under CI=true when redis-server is missing
if (!available && !IN_CI) console.warn('ratelimit-coalesce.test.ts: redis-server is not installed here; skipping');

async function evalCalls(client: Redis): Promise<number> {
  const info = await client.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) calls += Number(m[1]);
  return calls;
}

describe.skipIf(!available)('coalesced Redis consumes', () => {
  let redis: RedisServer;
  let client: Redis;
  let upstream: Upstream;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    upstream = await startUpstream();
    const config = `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
state: { redis: "${redis.url}" }
routes:
  - name: burst
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 5s, connect_timeout: 1s }
    public: true
    rate_limit: { per: route, limit: 25, window: 1m }
`;
    a = await startGateway(config);
    b = await startGateway(config);
    await waitFor(() => a.gateway.runtime.redis?.status === 'ready' && b.gateway.runtime.redis?.status === 'ready', { timeoutMs: 5000 });
  });
  afterAll(async () => {
    client?.disconnect();
    await a?.close();
    await b?.close();
    await upstream?.close();
    await redis?.stop();
  });

  it('one turn of 10 requests for a limit of 4: one round trip, the first 4 pass, the counter reads 10', async () => {
    const opts = { points: 4, duration: 60, keyPrefix: 'coalesce-unit' };
    const impl = new RateLimiterRedis({ ...opts, storeClient: client, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(opts) });
    const consumer = new CoalescedConsumer(impl, 4);
    await impl.consume('warm', 1); // loads the script, so the count below is of this batch alone
    const before = await evalCalls(client);
    const verdicts = await Promise.all(Array.from({ length: 10 }, () => consumer.consume('k')));
    expect(verdicts.map((v) => v.ok)).toEqual([true, true, true, true, false, false, false, false, false, false]);
    const refused = verdicts[9];
    expect(refused?.ok === false && refused.res.remainingPoints).toBe(0);
    expect(refused?.ok === false && refused.res.msBeforeNext).toBeGreaterThan(0);
    expect(Number(await client.get('coalesce-unit:k'))).toBe(10);
    expect((await evalCalls(client)) - before).toBe(1);
    // A later turn sees the shared count: nothing fits any more.
    expect((await consumer.consume('k')).ok).toBe(false);
    // Different keys in one turn are counted apart.
    const [x, y] = await Promise.all([consumer.consume('x'), consumer.consume('y')]);
    expect([x.ok, y.ok]).toEqual([true, true]);
    expect(Number(await client.get('coalesce-unit:x'))).toBe(1);
  });

  it('a concurrent burst of 60 through two instances on a limit of 25: exactly 25 reach the app', async () => {
    const agent = new Agent({ connections: 64 });
    const before = upstream.received.length;
    const send = (gw: TestGateway, i: number) =>
      request(`${gw.url}/burst-${i}`, { dispatcher: agent }).then(async (r) => {
        const text = await r.body.text();
        return { status: r.statusCode, code: r.statusCode === 200 ? undefined : (JSON.parse(text) as { code: string }).code };
      });
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => send(i % 2 === 0 ? a : b, i)));
    await agent.close();
    const ok = answers.filter((x) => x.status === 200);
    const limited = answers.filter((x) => x.status === 429);
    expect(ok).toHaveLength(25);
    expect(limited).toHaveLength(35);
    expect(limited.every((x) => x.code === 'GW_ERR_RATE_LIMITED')).toBe(true);
    expect(upstream.received.length - before).toBe(25);
    expect(Number(await client.get('ztgw:rl:route:burst:route:25:60:route'))).toBe(60);
  });
});
