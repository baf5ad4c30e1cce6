// state.sentinel: the gateway finds the Redis master through a real Redis Sentinel (redis-server --sentinel)
// and keeps its rate limits there, like with state.redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { ConfigError } from '../../src/config/errors.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { scrape } from '../helpers/metrics.ts';
import { IN_CI, pingRedis, redisServerAvailable, startRedis, type RedisServer } from '../helpers/redis.ts';
import { freePort, waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const available = redisServerAvailable(); // throws under CI=true when redis-server is missing
if (!available && !IN_CI) console.warn('redis-sentinel.test.ts: redis-server is not installed here; skipping');

let master: RedisServer;
let sentinel: ChildProcess;
let sentinelPort: number;
let upstream: Upstream;
let gw: TestGateway;

const config = (state: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0 }
shutdown: { drain_timeout: 1s }
${state}
routes:
  - name: sentinel-limited
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
    rate_limit: { per: route, limit: 2, window: 1m }
`;

describe.skipIf(!available)('state.sentinel', () => {
  beforeAll(async () => {
    master = await startRedis();
    upstream = await startUpstream();
    sentinelPort = await freePort();
    const dir = tempDir('ztgw-sentinel-');
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, `port ${sentinelPort}\nbind 127.0.0.1\nsentinel monitor ztgw 127.0.0.1 ${master.port} 1\nsentinel down-after-milliseconds ztgw 5000\n`);
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await waitFor(
      async () => {
        if (sentinel.exitCode !== null) throw new Error(`redis sentinel exited (${sentinel.exitCode}) before answering PING`);
        return pingRedis(sentinelPort, 200);
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'redis sentinel to answer PING' },
    );
    gw = await startGateway(config(`state: { sentinel: { name: ztgw, nodes: ["127.0.0.1:${sentinelPort}"] } }`));
    await waitFor(() => gw.gateway.runtime.redis?.status === 'ready', { timeoutMs: 5000 });
  }, 30_000);

  afterAll(async () => {
    await gw?.close();
    if (sentinel && sentinel.exitCode === null) {
      sentinel.kill('SIGTERM');
      await once(sentinel, 'exit');
    }
    await upstream?.close();
    await master?.stop();
  });

  it('keeps the route limit in the master the sentinel names', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const res = await request(`${gw.url}/s/${i}`);
      await res.body.dump();
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([200, 200, 429]);
    const client = new Redis(master.url, { maxRetriesPerRequest: 0 });
    try {
      expect(await client.keys('ztgw:rl:route:sentinel-limited:*')).toHaveLength(1);
    } finally {
      client.disconnect();
    }
    expect((await scrape(gw.gateway.adminUrl as string)).value('zt_redis_up')).toBe(1);
  });

  it('refuses state.redis and state.sentinel together', async () => {
    await expect(
      startGateway(config(`state: { redis: "${master.url}", sentinel: { name: ztgw, nodes: ["127.0.0.1:${sentinelPort}"] } }`)),
    ).rejects.toThrow(ConfigError);
    await expect(
      startGateway(config(`state: { redis: "${master.url}", sentinel: { name: ztgw, nodes: ["127.0.0.1:${sentinelPort}"] } }`)),
    ).rejects.toMatchObject({ code: 'GW_ERR_CONFIG_INVALID', problems: [expect.objectContaining({ code: 'CFG_CONFLICT', path: 'state.sentinel', keyPath: ['state', 'sentinel'] })] });
  });
});
