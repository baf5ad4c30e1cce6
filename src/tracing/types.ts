// The tracer the pipeline holds (CompiledConfig.tracer) when tracing.otlp is configured.
import type { RequestContext, RequestTrace } from '../core/index.ts';

/** What is known of a request when it ends, for its server span. */
export interface ServerEnd {
  readonly status: number;
  readonly route: string | undefined;
  /** allow, deny, public, unauthenticated, step_up, rate_limited, … (audit's decision kinds). */
  readonly decision: string;
  readonly code: string | undefined;
  /** Put on the span only with tracing.include_subject. */
  readonly subject: string | undefined;
}

/** One request's server span, with the child-span factory the steps use (ctx.trace). */
export interface ServerTrace extends RequestTrace {
  end(facts: ServerEnd): void;
}

export interface GatewayTracer {
  /** The tracing config it was built from (a reload with the same one keeps this tracer). */
  readonly fingerprint: string;
  /** Opens the server span of a normalized request: continues a trusted proxy's trace, else starts one. */
  startRequest(ctx: RequestContext, httpVersion: string): ServerTrace;
  /** Exports what is queued and stops (shutdown, or a reload that changed tracing). */
  shutdown(): Promise<void>;
}
