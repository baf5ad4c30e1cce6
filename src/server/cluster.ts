// `start --workers N|auto`: node:cluster across cores. The primary forks N workers (each a whole gateway;
// they share the listen socket), restarts a crashed worker with backoff, forwards SIGHUP (reload) and
// SIGTERM/SIGINT (graceful drain) to them, and serves the admin listener itself: one address for probes and
// scrapes, with /metrics aggregated across workers (prom-client AggregatorRegistry). Shared state (rate
// limits, sessions, revocations) must live in Redis for the workers to behave as one gateway.
import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { createLogger, type Logger } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import { listenOn } from '../core/index.ts';
import { createAdminListener } from './admin.ts';
import { metricsGuard } from './metrics-auth.ts';
import { generatedAssertionKey, shareGeneratedAssertionKey } from '../proxy/index.ts';
import { buildInfo } from '../metrics/index.ts';
import { processCspKey, shareProcessCspKey } from '../response/index.ts';

const MAX_WORKERS = 256;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** A worker that ran this long before dying starts the backoff from the beginning again. */
const STABLE_MS = 10_000;

/** `auto` → the cores available to this process; otherwise 1..256; undefined when invalid. */
export function parseWorkers(value: string): number | undefined {
  if (value === 'auto') return Math.min(MAX_WORKERS, availableParallelism());
  if (!/^[1-9]\d{0,2}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= MAX_WORKERS ? n : undefined;
}

export const isWorker = (): boolean => cluster.isWorker;

/** Passes the primary's generated assertion key to the workers it forks (never written to disk). */
const SHARED_KEY_ENV = 'ZT_CLUSTER_ASSERTION_KEY';

/** In a worker, before its config is compiled: adopt the primary's generated key, and forget the variable. */
export function adoptPrimaryKeys(): void {
  const pem = process.env[SHARED_KEY_ENV];
  delete process.env[SHARED_KEY_ENV];
  if (pem) shareGeneratedAssertionKey(pem);
  // Without session.secret the CSP report tokens come from a process key: one for all workers, so a report
  // reaches whichever worker accepts it.
  const csp = process.env[SHARED_CSP_KEY_ENV];
  delete process.env[SHARED_CSP_KEY_ENV];
  if (csp) shareProcessCspKey(csp);
}
const SHARED_CSP_KEY_ENV = 'ZT_CLUSTER_CSP_KEY';
/** The worker's cluster id (1, 2, …; a restarted worker gets a new one) for its log lines. */
export const workerId = (): number | undefined => cluster.worker?.id;

type WorkerMessage = { type: 'zt:ready'; generation: number };

/** In a worker: tell the primary it serves, and answer its metric requests from the gateway's registry. */
export function announceWorker(registry: Registry, generation: number): void {
  new AggregatorRegistry(); // installs the worker side of prom-client's metrics request/response
  AggregatorRegistry.setRegistries([registry]);
  reportGeneration(generation);
}

/** In a worker: the config generation it now serves (at start and after a SIGHUP reload), for /readyz. */
export function reportGeneration(generation: number): void {
  process.send?.({ type: 'zt:ready', generation } satisfies WorkerMessage);
}

interface Slot {
  worker: Worker;
  ready: boolean;
  generation: number;
  startedAt: number;
  failures: number;
}

/** Runs the primary until SIGTERM/SIGINT has drained every worker. Resolves with the exit code. */
export async function runPrimary(config: Config, workers: number, log: Logger = createLogger(config.log.level)): Promise<number> {
  const slots: Slot[] = [];
  let stopping = false;
  const aggregator = new AggregatorRegistry();

  // Without identity_headers.assertion_key each process would generate its own: one key for all workers.
  const sharedKey = generatedAssertionKey().export({ type: 'pkcs8', format: 'pem' }).toString();
  const fork = (index: number, failures: number): void => {
    const worker = cluster.fork({ [SHARED_KEY_ENV]: sharedKey, [SHARED_CSP_KEY_ENV]: processCspKey() });
    const slot: Slot = { worker, ready: false, generation: 0, startedAt: Date.now(), failures };
    slots[index] = slot;
    worker.on('message', (m: WorkerMessage) => {
      if (m?.type === 'zt:ready') {
        slot.ready = true;
        slot.generation = m.generation;
      }
    });
    worker.once('exit', (code, signal) => {
      slot.ready = false;
      if (stopping) return;
      const stable = Date.now() - slot.startedAt >= STABLE_MS;
      const n = stable ? 0 : slot.failures + 1;
      const delay = n === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (n - 1));
      log.error({ worker: worker.id, pid: worker.process.pid, code, signal, restart_in_ms: delay }, 'worker exited; restarting it');
      setTimeout(() => {
        if (!stopping) fork(index, n);
      }, delay).unref();
    });
  };

  let admin: Server | undefined;
  if (config.admin) {
    admin = createAdminListener({
      ready: () => !stopping && slots.some((s) => s.ready),
      generation: () => Math.max(0, ...slots.map((s) => s.generation)),
      details: () => ({ workers: { ready: slots.filter((s) => s.ready).length, total: workers } }),
      metrics: () => aggregator.clusterMetrics().then((body) => ({ contentType: aggregator.contentType, body })),
      // The primary serves plain HTTP (no client certificates): the admin token is its credential.
      metricsAllowed: metricsGuard(() => config.admin, false),
    });
    await listenOn(admin, config.admin.listen);
    if (config.admin.token_hash !== undefined) log.warn('--workers: the admin API is not served; admin.token_hash guards /metrics only');
  }
  for (let i = 0; i < workers; i++) fork(i, 0);
  log.info({ workers, admin: config.admin?.listen, ...buildInfo() }, 'zt-gateway primary started');
  if (workers > 1 && !config.state?.redis && !config.state?.sentinel) {
    log.warn('no state.redis: each worker keeps its own rate limits, lockouts and revocations');
  }

  // SIGHUP: every worker reloads its config (each builds and validates it; a bad file keeps the old one).
  const onHup = () => {
    for (const s of slots) s.worker.process.kill('SIGHUP');
  };
  process.on('SIGHUP', onHup);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: draining workers');
      const alive = slots.filter((s) => !s.worker.isDead());
      let left = alive.length;
      if (left === 0) return resolve();
      // Each worker drains for up to drain_timeout; one that hangs past that (and a margin) is killed.
      const hard = setTimeout(() => {
        for (const s of alive) if (!s.worker.isDead()) s.worker.process.kill('SIGKILL');
      }, config.shutdown.drain_timeout + 5000);
      for (const s of alive) {
        s.worker.once('exit', () => {
          if (--left === 0) {
            clearTimeout(hard);
            resolve();
          }
        });
        s.worker.process.kill('SIGTERM');
      }
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  process.off('SIGHUP', onHup);
  if (admin) await new Promise<void>((r) => admin.close(() => r()));
  admin?.closeAllConnections();
  log.info('zt-gateway stopped');
  log.flush();
  return 0;
}
