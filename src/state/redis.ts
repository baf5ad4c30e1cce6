// The shared Redis connection (ioredis). Commands fail fast while Redis is down (no offline queue), so
// callers fall back (rate limits) or fail closed (authentication state) instead of hanging. ioredis is
// imported when a config first names a Redis (an idle gateway without one never loads it, ~20 MB RSS).
import type { Redis } from 'ioredis';
import type { Logger } from '../audit/index.ts';
import type { RedisSentinelConfig } from '../config/index.ts';
import { splitAddress } from '../core/index.ts';

/** One Redis by URL, or the master of a Sentinel group (ioredis asks the sentinels and follows failovers). */
export async function createRedis(target: string | RedisSentinelConfig, log: Logger): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const options = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 1000,
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
    lazyConnect: false,
  };
  const redis =
    typeof target === 'string'
      ? new Redis(target, options)
      : new Redis({
          ...options,
          sentinels: target.nodes.map((n) => splitAddress(n)),
          name: target.name,
          db: target.db,
          ...(target.password ? { password: target.password } : {}),
          ...(target.sentinel_password ? { sentinelPassword: target.sentinel_password } : {}),
        });
  const url = typeof target === 'string' ? target : `sentinel://${target.name}`;
  let down = false;
  redis.on('ready', () => {
    if (down) log.warn({ redis: redacted(url) }, 'redis is back: shared state restored');
    down = false;
  });
  redis.on('error', (err: Error) => {
    if (!down) log.warn({ redis: redacted(url), err: err.message }, 'redis unavailable: rate limits are per-instance until it returns');
    down = true;
  });
  return redis;
}

/** Never log a Redis password. */
export function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(invalid)';
  }
}
