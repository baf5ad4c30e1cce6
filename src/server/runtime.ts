// The whole runtime state behind one reference. Reload builds a complete new state and swaps it only on
// success; requests hold the state they started with, and pools retire when no state uses them.
import { resolve } from 'node:path';
import type { Pool } from 'undici';
import { createAuditLog, type AuditLog, type Logger } from '../audit/index.ts';
import { prepareAdmission, type CompiledConfig, type RuntimeHandle, type RuntimeState } from '../pipeline/index.ts';
import { createNormalizer } from '../normalize/index.ts';
import { PoolRegistry, UpstreamGroup, type UpstreamTarget } from '../proxy/index.ts';
import { createRateLimits, LimiterRegistry } from '../ratelimit/index.ts';
import type { Redis } from 'ioredis';
import { createAccessStore, traceRedisCommands, type AccessStore } from '../state/index.ts';
import { createRiskEngine, MemoryProfileStore, RedisProfileStore, type ProfileStore, type RiskEngine } from '../risk/index.ts';
import { Metrics } from '../metrics/index.ts';
import { LiveRegistry } from '../live/index.ts';
import { CspStore } from '../response/index.ts';
import type { PipelineContext } from '../pipeline/index.ts';


/** What the shared Redis connection was made from (fixed for the process's life). */
function redisTarget(compiled: CompiledConfig): string | undefined {
  const state = compiled.config.state;
  return state?.sentinel ? JSON.stringify(state.sentinel) : state?.redis;
}

/** What makes two configs' upstream groups the same (then the running one, with its health state, is kept). */
function groupKey(route: string, u: UpstreamTarget): string {
  return JSON.stringify([route, { ...u, tls: null }, u.retries && [...u.retries.statuses]]);
}

export class Runtime implements RuntimeHandle {
  #current: RuntimeState;
  #generation = 0;
  readonly #registry = new PoolRegistry();
  readonly #secure: boolean;
  readonly #onRetired: Array<RuntimeState> = [];
  /** The current config's upstream groups by route name + upstream identity: a reload keeps unchanged ones (health state, timers). */
  #groups = new Map<string, UpstreamGroup>();

  readonly #log: Logger;
  readonly #audits = new Map<string, AuditLog>();
  readonly #chained = new Map<string, boolean>();
  readonly #redisUrl: string | undefined;
  readonly #redis: Redis | null;
  readonly #limiters: LimiterRegistry;
  readonly #access: AccessStore;
  /** Behaviour profiles outlive reloads (created when a config first uses risk). */
  #riskStore: ProfileStore | undefined;
  /** Outlives reloads (counters keep counting across config generations). */
  readonly metrics: Metrics;
  /** Live connections outlive reloads: a reload re-checks them against its new policy. */
  readonly live = new LiveRegistry<PipelineContext>();
  /** CSP violations reported by browsers and hashes learned from pages: outlive reloads. */
  readonly csp: CspStore;

  constructor(compiled: CompiledConfig, secure: boolean, log: Logger, redis: Redis | null, metrics = new Metrics()) {
    this.#secure = secure;
    this.metrics = metrics;
    this.#log = log;
    // Shared state connections live as long as the process; the URL is fixed at start.
    this.#redisUrl = redisTarget(compiled);
    this.#redis = redis;
    this.#limiters = new LimiterRegistry(this.#redis);
    this.csp = new CspStore({ count: (route, directive) => metrics.cspViolation(route, directive), log: (fields, msg) => log.warn(fields, msg) });
    this.#access = createAccessStore({ redis, log, maxStalenessMs: compiled.config.state?.max_staleness ?? 3000 });
    this.#current = this.#build(compiled);
  }

  get current(): RuntimeState {
    return this.#current;
  }

  acquire(): RuntimeState {
    const s = this.#current;
    s.inflight++;
    return s;
  }

  release(s: RuntimeState): void {
    s.inflight--;
    if (s.retired && s.inflight === 0) this.#sweep();
  }

  /** Installs a new compiled config; the old state keeps serving its in-flight requests. */
  get redis(): Redis | null {
    return this.#redis;
  }

  get access(): AccessStore {
    return this.#access;
  }

  swap(compiled: CompiledConfig): RuntimeState {
    if (redisTarget(compiled) !== this.#redisUrl) this.#log.warn('state.redis changed: restart the gateway to apply it');
    const next = this.#build(compiled);
    const old = this.#current;
    this.#current = next;
    old.retired = true;
    this.#onRetired.push(old);
    if (old.inflight === 0) this.#sweep();
    return next;
  }

  async close(): Promise<void> {
    for (const group of this.#groups.values()) group.stop();
    await this.#registry.closeAll();
    await this.#access.close();
    await this.#current.compiled.tracer?.shutdown(); // exports the spans still queued
    this.#redis?.disconnect();
    for (const a of this.#audits.values()) a.close();
  }

  /** One audit destination per target, kept across reloads (a reload must not reopen or lose records). */
  #auditFor(target: string, chain: boolean): AuditLog {
    let audit = this.#audits.get(target);
    if (!audit) this.#audits.set(target, (audit = createAuditLog(target, this.#log, chain)));
    else if (this.#chained.get(target) !== chain) this.#log.warn('log.audit_chain changed: restart the gateway to apply it');
    this.#chained.set(target, this.#chained.get(target) ?? chain);
    return audit;
  }

  #build(compiled: CompiledConfig): RuntimeState {
    const pools = new Map<string, Pool>();
    const upstreams = new Map<string, UpstreamGroup>();
    const groups = new Map<string, UpstreamGroup>();
    for (const r of compiled.routes) {
      for (const e of r.upstream.endpoints) pools.set(e.poolKey, this.#registry.get(e));
      const key = groupKey(r.name, r.upstream);
      const group = this.#groups.get(key) ?? groups.get(key) ?? new UpstreamGroup(r.upstream, (e) => this.#registry.get(e), this.metrics.upstreamCells(r.name));
      groups.set(key, group);
      upstreams.set(r.name, group);
      this.metrics.route(r.name); // resolve the route's metric cells now, not on its first request
    }
    // Health checks run for the current config's upstreams only: a reload stops those it dropped or changed.
    for (const [key, group] of this.#groups) if (!groups.has(key)) group.stop();
    for (const group of groups.values()) group.start();
    this.#groups = groups;
    prepareAdmission(compiled.routes); // each route's step list, built now rather than on its first request
    if (this.#redis) traceRedisCommands(this.#redis, compiled.tracer !== null);
    return {
      generation: ++this.#generation,
      compiled,
      normalize: createNormalizer({
        identityPrefix: compiled.identityPrefix,
        // Exporting spans reads the inbound trace context too (to continue a trusted proxy's trace).
        tracing: compiled.config.tracing.propagate || compiled.tracer !== null,
        trustedProxies: compiled.trustedProxies,
        maxTargetBytes: compiled.config.listen.limits.max_target_bytes,
        secure: this.#secure,
      }),
      pools,
      upstreams,
      // Like every path in the config, a relative audit file is relative to the config file.
      audit: this.#auditFor(
        compiled.config.log.audit === 'stdout' ? 'stdout' : resolve(compiled.source.baseDir, compiled.config.log.audit),
        compiled.config.log.audit_chain,
      ),
      limits: createRateLimits(compiled.config, this.#limiters),
      access: this.#access,
      csp: this.csp,
      risk: this.#riskFor(compiled),
      inflight: 0,
      retired: false,
    };
  }

  #riskFor(compiled: CompiledConfig): RiskEngine | null {
    const settings = compiled.risk;
    if (settings === null) return null;
    this.#riskStore ??= this.#redis ? new RedisProfileStore(this.#redis, settings.store) : new MemoryProfileStore(settings.store);
    return createRiskEngine(settings, this.#riskStore);
  }

  /** A reload that changed tracing: the old tracer exports what it holds, once no state uses it. */
  #retireTracer(old: RuntimeState): void {
    const tracer = old.compiled.tracer;
    if (tracer === null || tracer === this.#current.compiled.tracer) return;
    if (this.#onRetired.some((s) => s.compiled.tracer === tracer)) return;
    tracer.shutdown().catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'tracing: the old exporter did not shut down cleanly'));
  }

  /** Closes pools that neither the current state nor a draining old one still uses. */
  #sweep(): void {
    for (let i = this.#onRetired.length - 1; i >= 0; i--) {
      const old = this.#onRetired[i] as RuntimeState;
      if (old.inflight !== 0) continue;
      this.#onRetired.splice(i, 1);
      this.#retireTracer(old);
    }
    const keep = new Set<string>();
    for (const s of [this.#current, ...this.#onRetired]) for (const k of s.pools.keys()) keep.add(k);
    this.#registry.retain(keep);
  }
}
