// Rate limits (rate-limiter-flexible): pre-auth per client IP, per route after authorization, and a
// brute-force lockout for authentication failures. Memory by default; Redis when state.redis is set,
// with a memory insurance limiter so a Redis outage degrades to per-instance limits, never to 500s.
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { type Identity, type RequestContext, GatewayError } from '../core/index.ts';
import type { Config, RateLimitConfig } from '../config/index.ts';
import { limitKey } from '../normalize/index.ts';
import { CoalescedConsumer } from './coalesce.ts';

interface Limiter {
  readonly policy: string;
  readonly kind: LimitKind;
  readonly limit: number;
  readonly windowSec: number;
  readonly blockSec: number;
  readonly impl: RateLimiterAbstract;
  /** Redis limiters: requests for one key in one event-loop turn share one round trip. */
  readonly coalesced: CoalescedConsumer | null;
}

/** Limiters outlive reloads: an unchanged limit keeps its counters. */
export class LimiterRegistry {
  readonly #limiters = new Map<string, Limiter>();
  readonly #redis: Redis | null;

  constructor(redis: Redis | null) {
    this.#redis = redis;
  }

  get(scope: string, policy: string, limit: number, windowMs: number, blockMs = 0): Limiter {
    const windowSec = Math.max(1, Math.round(windowMs / 1000));
    const blockSec = Math.round(blockMs / 1000);
    const key = `${scope}|${limit}|${windowSec}|${blockSec}`;
    let l = this.#limiters.get(key);
    if (l === undefined) {
      // The limit and window are part of the key: changing a limit starts fresh counters instead of misreading old ones.
      const keyPrefix = `ztgw:rl:${scope}:${limit}:${windowSec}`;
      const opts = { points: limit, duration: windowSec, blockDuration: blockSec, keyPrefix };
      const impl = this.#redis
        ? new RateLimiterRedis({
            ...opts,
            storeClient: this.#redis,
            rejectIfRedisNotReady: true,
            insuranceLimiter: new RateLimiterMemory(opts),
          })
        : new RateLimiterMemory(opts);
      const kind: LimitKind = scope === 'pre' ? 'pre_auth' : scope === 'authfail' ? 'lockout' : 'route';
      // A blocking limiter (the lockout) keeps single consumes: its block starts on the exact failure.
      const coalesced = this.#redis && blockSec === 0 ? new CoalescedConsumer(impl, limit) : null;
      this.#limiters.set(key, (l = { policy, kind, limit, windowSec, blockSec, impl, coalesced }));
    }
    return l;
  }
}

function limitHeaders(l: Limiter, res: RateLimiterRes): Array<[string, string]> {
  const reset = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  return [
    ['retry-after', String(reset)],
    ['ratelimit-policy', `"${l.policy}";q=${l.limit};w=${l.windowSec}`],
    ['ratelimit', `"${l.policy}";r=${Math.max(0, res.remainingPoints)};t=${reset}`],
  ];
}

export type LimitKind = 'pre_auth' | 'route' | 'lockout';
const kinds = new WeakMap<GatewayError, LimitKind>();

/** Which limit refused a request (for zt_ratelimit_rejections_total); undefined for any other error. */
export function limitKind(err: unknown): LimitKind | undefined {
  return err instanceof GatewayError ? kinds.get(err) : undefined;
}

function limited(l: Limiter, res: RateLimiterRes, detail: string): GatewayError {
  const err = new GatewayError('GW_ERR_RATE_LIMITED', detail, { headers: limitHeaders(l, res) });
  kinds.set(err, l.kind);
  return err;
}

async function take(l: Limiter, key: string, detail: string): Promise<void> {
  if (l.coalesced !== null) {
    const verdict = await l.coalesced.consume(key);
    // ok: null — neither Redis nor the insurance limiter answered: let the request through rather than fail it.
    if (verdict.ok === false) throw limited(l, verdict.res, detail);
    return;
  }
  try {
    await l.impl.consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes) throw limited(l, err, detail);
    // Neither Redis nor the insurance limiter answered: let the request through rather than fail it.
  }
}

export interface RateLimits {
  /** Before authentication, per client IP (protects the authenticators). */
  preAuth(ctx: RequestContext): Promise<void> | undefined;
  /** A locked-out client (too many authentication failures) gets 429 before any credential is checked. */
  checkLockout(ctx: RequestContext): Promise<void> | undefined;
  recordAuthFailure(ctx: RequestContext, subject: string | undefined): void;
  /** After authorization, per ip | subject | api_key | route as the route says. */
  route(route: { readonly name: string }, ctx: RequestContext, identity: Identity | null): Promise<void> | undefined;
}

export function createRateLimits(config: Config, registry: LimiterRegistry): RateLimits {
  const pre = config.rate_limits.pre_auth;
  const preLimiter = pre ? registry.get('pre', 'pre_auth', pre.limit, pre.window) : null;
  const lock = config.rate_limits.auth_failures;
  const lockLimiter = lock ? registry.get('authfail', 'auth_failures', lock.limit, lock.window, lock.block) : null;
  const perRoute = new Map<string, { cfg: RateLimitConfig; limiter: Limiter }>();
  for (const r of config.routes) {
    if (r.rate_limit) {
      perRoute.set(r.name, {
        cfg: r.rate_limit,
        limiter: registry.get(`route:${r.name}:${r.rate_limit.per}`, r.name, r.rate_limit.limit, r.rate_limit.window),
      });
    }
  }

  return {
    preAuth(ctx) {
      return preLimiter ? take(preLimiter, limitKey(ctx.clientIp), 'too many requests from this address') : undefined;
    },
    checkLockout(ctx) {
      if (!lockLimiter) return undefined;
      return lockLimiter.impl.get(`ip:${limitKey(ctx.clientIp)}`).then(
        (res) => {
          // `limit` failures lock the client out: the next attempt is refused, even with valid credentials.
          if (res !== null && res.consumedPoints >= lockLimiter.limit) {
            throw limited(lockLimiter, res, 'too many failed authentication attempts; try again later');
          }
        },
        () => undefined,
      );
    },
    recordAuthFailure(ctx, subject) {
      if (!lockLimiter) return;
      const swallow = () => undefined;
      const fail = (key: string) => {
        // The failure that reaches the limit starts the block (rate-limiter-flexible alone would only block
        // on the one after it, and would otherwise keep the lock for the rest of the window).
        lockLimiter.impl
          .consume(key)
          .then((res) => {
            if (res.consumedPoints >= lockLimiter.limit && lockLimiter.blockSec > 0) return lockLimiter.impl.block(key, lockLimiter.blockSec);
            return undefined;
          })
          .catch(swallow);
      };
      fail(`ip:${limitKey(ctx.clientIp)}`);
      if (subject !== undefined) fail(`sub:${subject}`);
    },
    route(route, ctx, identity) {
      const entry = perRoute.get(route.name);
      if (!entry) return undefined;
      let key: string;
      switch (entry.cfg.per) {
        case 'ip':
          key = `ip:${limitKey(ctx.clientIp)}`;
          break;
        case 'route':
          key = 'route';
          break;
        case 'api_key': {
          const id = identity?.method === 'api_key' ? identity.claims.key_id : undefined;
          key = typeof id === 'string' ? `key:${id}` : identity ? `sub:${identity.provider}:${identity.subject}` : `ip:${limitKey(ctx.clientIp)}`;
          break;
        }
        case 'subject':
          key = identity ? `sub:${identity.provider}:${identity.subject}` : `ip:${limitKey(ctx.clientIp)}`;
          break;
      }
      return take(entry.limiter, key, 'rate limit for this route exceeded');
    },
  };
}
