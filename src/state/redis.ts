// The shared Redis connection (ioredis). Commands fail fast while Redis is down (no offline queue), so
// callers fall back (rate limits) or fail closed (authentication state) instead of hanging.
import { Redis } from 'ioredis';
import type { Logger } from '../audit/logger.ts';

export function createRedis(url: string, log: Logger): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 1000,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: false,
  });
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
