// The process's own figures on a gateway's registry: prom-client's default Node runtime metrics (CPU, memory,
// heap spaces, event-loop lag, GC, handles, file descriptors) and zt_build_info.
//
// In cluster mode the primary sums what the workers report (prom-client's AggregatorRegistry), with the
// aggregator each default metric declares: totals (CPU seconds, resident memory, heap, open file descriptors,
// GC time, handles) are summed over the workers, which is what the node as a whole uses; event-loop lag is
// averaged (its _min and _max take the min and max), nodejs_version_info keeps the first worker's,
// process_start_time_seconds is left out (no meaningful aggregate). zt_build_info takes the max: every worker
// runs the same build, so it stays 1.
import { collectDefaultMetrics, Gauge, Registry, type Metric } from 'prom-client';
import type { BuildInfo } from './build-info.ts';

let defaults: Registry | undefined;

/**
 * The default metrics, created once per process: they are facts of the process (its heap, its event loop),
 * and each collector installs an event-loop monitor and a GC observer, which several gateways in one
 * process (tests) need not repeat. Every gateway's registry gets the same metric objects.
 */
function processDefaults(): readonly Metric[] {
  if (defaults === undefined) {
    defaults = new Registry();
    collectDefaultMetrics({ register: defaults });
  }
  // getMetricsAsArray() returns the metric objects themselves (typed as their JSON shape).
  return defaults.getMetricsAsArray() as unknown as readonly Metric[];
}

export function registerProcessMetrics(registry: Registry, build: BuildInfo): void {
  for (const metric of processDefaults()) registry.registerMetric(metric);
  const info = new Gauge({
    name: 'zt_build_info',
    help: 'Always 1; the labels name the running build: package version, git commit (or unknown), Node version',
    labelNames: ['version', 'commit', 'node'],
    registers: [registry],
    aggregator: 'max',
  });
  info.set({ version: build.version, commit: build.commit, node: build.node }, 1);
}
