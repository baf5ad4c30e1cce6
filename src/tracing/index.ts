// tracing/: the folder's only entry for the rest of src/. The OpenTelemetry SDK (sdk.ts) is imported only
// when a config sets tracing.otlp: nothing here re-exports a value from it (docs/architecture.md).
import type { Config } from '../config/index.ts';
import type { GatewayTracer } from './types.ts';

export type { GatewayTracer, ServerEnd, ServerTrace } from './types.ts';

/** Identifies a tracing config: equal fingerprints may share one tracer across a reload. */
export function tracingFingerprint(cfg: Config['tracing']): string {
  return JSON.stringify([cfg.otlp ?? null, cfg.sample_ratio, cfg.include_subject]);
}

/** The tracer for `cfg`, or null when nothing is exported (no span is ever made then). */
export async function loadTracer(cfg: Config['tracing'], previous: GatewayTracer | null | undefined): Promise<GatewayTracer | null> {
  if (cfg.otlp === undefined) return null;
  const fingerprint = tracingFingerprint(cfg);
  if (previous?.fingerprint === fingerprint) return previous;
  const { createSdkTracer } = await import('./sdk.ts');
  return createSdkTracer(cfg, cfg.otlp, fingerprint);
}
