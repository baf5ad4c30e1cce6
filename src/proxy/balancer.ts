// A route's endpoints at run time: balancing (round robin, least request, random), passive outlier ejection,
// active health checks and the retry budget. Built by the runtime once per config (kept across a reload when
// the route's upstream did not change, so health state and timers carry over); the request path only picks.
import type { Pool } from 'undici';
import { GatewayError } from '../core/index.ts';
import { endpointPool, type EndpointTarget, type UpstreamTarget } from './upstream.ts';

/** A pre-resolved metric cell (metrics/series.ts), passed in: proxy/ does not import metrics/. */
export interface CountCell {
  n: number;
}

export interface EndpointCells {
  readonly healthy: CountCell;
  readonly inflight: CountCell;
  readonly ejections: CountCell;
}

export interface GroupCells {
  readonly retries: CountCell;
  endpoint(index: number): EndpointCells;
}

/** One endpoint's live state. */
export class Endpoint {
  readonly target: EndpointTarget;
  readonly pool: Pool;
  readonly cells: EndpointCells;
  inflight = 0;
  /** Active health: false after `unhealthy_after` failed checks, true again after `healthy_after` good ones. */
  healthy = true;
  /** Passive ejection: unusable until this time (ms since epoch). */
  ejectedUntil = 0;
  consecutiveErrors = 0;
  /** Positive: consecutive good checks; negative: consecutive failed ones. */
  streak = 0;
  /** The health checks' own connection: never queued behind the route's requests in `pool`. */
  checker: Pool | undefined;
  #ejectTimer: NodeJS.Timeout | undefined;

  constructor(target: EndpointTarget, pool: Pool, cells: EndpointCells) {
    this.target = target;
    this.pool = pool;
    this.cells = cells;
    cells.healthy.n = 1;
  }

  available(now: number): boolean {
    return this.healthy && this.ejectedUntil <= now;
  }

  #publish(): void {
    this.cells.healthy.n = this.available(Date.now()) ? 1 : 0;
  }

  begin(): void {
    this.inflight++;
    this.cells.inflight.n++;
  }

  end(): void {
    this.inflight--;
    this.cells.inflight.n--;
  }

  /** A connect failure, reset, timeout or 502/503/504 answer; `mayEject` false keeps it in use whatever the count. */
  failed(outlier: UpstreamTarget['outlier'], mayEject = true): void {
    this.consecutiveErrors++;
    if (outlier === null || this.consecutiveErrors < outlier.consecutiveErrors || this.ejectedUntil > Date.now()) return;
    if (!mayEject) return;
    this.consecutiveErrors = 0;
    this.ejectedUntil = Date.now() + outlier.ejection;
    this.cells.ejections.n++;
    this.#publish();
    clearTimeout(this.#ejectTimer);
    this.#ejectTimer = setTimeout(() => this.#publish(), outlier.ejection + 1);
    this.#ejectTimer.unref();
  }

  succeeded(): void {
    this.consecutiveErrors = 0;
  }

  checked(ok: boolean, healthyAfter: number, unhealthyAfter: number): void {
    this.streak = ok ? Math.max(this.streak, 0) + 1 : Math.min(this.streak, 0) - 1;
    if (ok && !this.healthy && this.streak >= healthyAfter) this.healthy = true;
    else if (!ok && this.healthy && -this.streak >= unhealthyAfter) this.healthy = false;
    this.#publish();
  }

  stop(): void {
    clearTimeout(this.#ejectTimer);
    this.checker?.destroy().catch(() => undefined);
    this.checker = undefined;
  }
}

const RETRYABLE_CONNECT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EADDRNOTAVAIL']);
const RETRYABLE_RESET = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED']);

/** What kind of failure an undici error is, for `retries.on`. */
export function failureKind(err: unknown): 'connect_failure' | 'reset' | 'other' {
  const code = (err as { code?: string }).code ?? '';
  if (RETRYABLE_CONNECT.has(code)) return 'connect_failure';
  if (RETRYABLE_RESET.has(code)) return 'reset';
  return 'other';
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** The endpoints of one route's upstream. */
export class UpstreamGroup {
  readonly upstream: UpstreamTarget;
  readonly endpoints: readonly Endpoint[];
  readonly cells: GroupCells;
  /** Requests being forwarded (for the retry budget). */
  active = 0;
  /** Retry attempts in flight. */
  activeRetries = 0;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(upstream: UpstreamTarget, pools: (t: EndpointTarget) => Pool, cells: GroupCells) {
    this.upstream = upstream;
    this.cells = cells;
    this.endpoints = upstream.endpoints.map((t) => new Endpoint(t, pools(t), cells.endpoint(t.index)));
  }

  /**
   * The next endpoint by the route's balance, skipping ejected and unhealthy ones (and `avoid`, a failed
   * attempt's endpoint, when another is available). Throws GW_ERR_NO_HEALTHY_UPSTREAM when none is.
   */
  pick(avoid?: Endpoint): Endpoint {
    const eps = this.endpoints;
    const n = eps.length;
    if (n === 1) {
      const only = eps[0] as Endpoint;
      if (only.available(Date.now())) return only;
      throw this.#noneHealthy();
    }
    const now = Date.now();
    let chosen: Endpoint | undefined;
    let fallback: Endpoint | undefined;
    const balance = this.upstream.balance;
    if (balance === 'random') {
      const start = Math.floor(Math.random() * n);
      for (let i = 0; i < n; i++) {
        const ep = eps[(start + i) % n] as Endpoint;
        if (!ep.available(now)) continue;
        if (ep === avoid) fallback = ep;
        else { chosen = ep; break; }
      }
    } else {
      const start = this.#next;
      for (let i = 0; i < n; i++) {
        const ep = eps[(start + i) % n] as Endpoint;
        if (!ep.available(now)) continue;
        if (ep === avoid) { fallback ??= ep; continue; }
        if (balance === 'round_robin') { chosen = ep; break; }
        // least_request: fewest in flight; the scan starts at the round-robin cursor, so ties rotate.
        if (chosen === undefined || ep.inflight < chosen.inflight) chosen = ep;
      }
    }
    chosen ??= fallback;
    if (chosen === undefined) throw this.#noneHealthy();
    this.#next = (chosen.target.index + 1) % n;
    return chosen;
  }

  /**
   * Passive outlier detection for one failed attempt. A failure a request can cause (the app's own 502-504
   * answer, a timeout) never ejects the last available endpoint: one client's requests to a failing path
   * must not take the whole route down (Envoy bounds ejection the same way). Connect failures and resets eject
   * regardless, so a route whose endpoints are all down answers 503 at once.
   */
  failed(ep: Endpoint, byRequest: boolean): void {
    const now = Date.now();
    const others = !byRequest || this.endpoints.some((e) => e !== ep && e.available(now));
    ep.failed(this.upstream.outlier, others);
  }

  /** Envoy's retry budget: retries in flight stay within max(min_concurrency, percent% of active requests). */
  mayRetry(): boolean {
    const r = this.upstream.retries;
    if (r === null) return false;
    return this.activeRetries < Math.max(r.minConcurrency, (r.percent * this.active) / 100);
  }

  #noneHealthy(): GatewayError {
    const now = Date.now();
    let wait = Infinity;
    for (const ep of this.endpoints) {
      if (ep.ejectedUntil > now) wait = Math.min(wait, ep.ejectedUntil - now);
      if (!ep.healthy && this.upstream.health) wait = Math.min(wait, this.upstream.health.interval * this.upstream.health.healthyAfter);
    }
    const seconds = Number.isFinite(wait) ? Math.max(1, Math.ceil(wait / 1000)) : 1;
    return new GatewayError('GW_ERR_NO_HEALTHY_UPSTREAM', 'no healthy upstream endpoint', { headers: [['retry-after', String(seconds)]] });
  }

  /** Starts the active health checks (timers unref'd); no-op without `upstream.health`. */
  start(): void {
    const health = this.upstream.health;
    if (health === null || this.#timer !== undefined || this.#stopped) return;
    const round = (): void => {
      for (const ep of this.endpoints) void this.#check(ep);
    };
    this.#timer = setInterval(round, health.interval);
    this.#timer.unref();
    round();
  }

  async #check(ep: Endpoint): Promise<void> {
    const health = this.upstream.health;
    if (health === null) return;
    let ok = false;
    try {
      ep.checker ??= endpointPool(ep.target, 1);
      const res = await ep.checker.request({
        method: 'GET',
        path: health.path,
        headers: { host: ep.target.hostHeader, 'user-agent': 'zt-gateway-health' },
        headersTimeout: health.timeout,
        bodyTimeout: health.timeout,
        signal: AbortSignal.timeout(health.timeout),
      });
      ok = res.statusCode >= 200 && res.statusCode < 400;
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    } catch {
      ok = false;
    }
    if (!this.#stopped) ep.checked(ok, health.healthyAfter, health.unhealthyAfter);
  }

  /** A reload that dropped or changed this upstream, or shutdown: no more checks. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const ep of this.endpoints) ep.stop();
  }
}
