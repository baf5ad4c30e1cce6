// The runtime state a request holds from start to end: one immutable generation of the compiled config
// with the services built for it. server/ builds and swaps it; the orchestrator only acquires and releases.
import type { Pool } from 'undici';
import type { AuditLog } from '../audit/index.ts';
import type { CompiledConfig } from './compile.ts';
import type { Metrics } from '../metrics/index.ts';
import type { Normalizer } from '../normalize/index.ts';
import type { RateLimits } from '../ratelimit/index.ts';
import type { RiskEngine } from '../risk/index.ts';
import type { AccessStore } from '../state/index.ts';
import type { LiveRegistry } from '../live/index.ts';
import type { PipelineContext } from './route.ts';
import type { CspStore } from '../response/index.ts';
import type { UpstreamGroup } from '../proxy/index.ts';

export interface RuntimeState {
  readonly generation: number;
  readonly compiled: CompiledConfig;
  readonly normalize: Normalizer;
  readonly pools: ReadonlyMap<string, Pool>;
  /** Each route's endpoints (balancing, health, retries), by route name. */
  readonly upstreams: ReadonlyMap<string, UpstreamGroup>;
  readonly audit: AuditLog;
  readonly limits: RateLimits;
  /** Suspensions, revocations and grants: one store for the process, shared by every state. */
  readonly access: AccessStore;
  /** CSP violations and learned inline hashes: one store for the process, shared by every state. */
  readonly csp: CspStore;
  /** The assess stage's risk engine; null when nothing uses risk. */
  readonly risk: RiskEngine | null;
  inflight: number;
  retired: boolean;
}

/** What the orchestrator needs of the runtime: the current state for a request, returned when it ends. */
export interface RuntimeHandle {
  acquire(): RuntimeState;
  release(state: RuntimeState): void;
  /** Outlives reloads. */
  readonly metrics: Metrics;
  /** Upgraded and still-streaming connections with the context that admitted them; outlives reloads. */
  readonly live: LiveRegistry<PipelineContext>;
}
