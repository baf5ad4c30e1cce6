// Which session store a config gets: sealed cookies, or Redis when state.redis is configured. The store
// (with its revocations) and its refresher (with its lock) are kept across reloads while the store kind and
// session lifetimes stay the same; the session secrets are not part of the key: a reload hands the kept
// store today's sealer, so a retired secret's cookies stop opening at once and a rotation keeps revocations.
import type { Redis } from 'ioredis';
import type { Config } from '../../config/index.ts';
import { Refresher } from './refresh.ts';
import type { Sealer } from './sealed.ts';
import { createCookieStore, createRedisStore } from './sessions.ts';
import { checksum, type SessionParts, type RpState } from './state.ts';

export type { SessionParts };

export type SessionConfig = NonNullable<Config['session']>;


/** The checksum the session parts are kept under (no secret in it). */
export function sessionPartsKey(redis: Redis | null, cfg: SessionConfig): string {
  return checksum(['sessions', redis ? 'redis' : 'cookie', cfg.ttl, cfg.idle_timeout]);
}

function createSessionParts(redis: Redis | null, cfg: SessionConfig, sealer: Sealer, now: () => number): SessionParts {
  const store = redis ? createRedisStore(redis, sealer, cfg.idle_timeout, now) : createCookieStore(sealer, cfg.ttl, now);
  const refresher = new Refresher(redis, store, now);
  return {
    store,
    refresher,
    dispose() {
      store.dispose();
      refresher.dispose();
    },
  };
}

/**
 * The session parts for this config (kept or new), holding today's sealer. `now`: the gateway's clock for
 * session and token times (the same for the whole process, so not part of the key).
 */
export function sessionParts(state: RpState, redis: Redis | null, cfg: SessionConfig, sealer: Sealer, now: () => number): { key: string; parts: SessionParts } {
  const key = sessionPartsKey(redis, cfg);
  const parts = state.sessions.take(key, () => createSessionParts(redis, cfg, sealer, now));
  parts.store.useSealer(sealer); // kept: the same store (its revocations survive the reload), today's secrets
  return { key, parts };
}
