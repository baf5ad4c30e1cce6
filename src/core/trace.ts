// What the steps see of tracing: a request's trace, to open child spans on (upstream request, JWKS fetch, IdP
// call, Redis command). The OpenTelemetry SDK behind it lives in tracing/ and is loaded only when
// tracing.otlp is configured; without it no RequestTrace exists and the steps' one check finds undefined.
import { AsyncLocalStorage } from 'node:async_hooks';

/** Attribute values the gateway puts on spans. */
export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

export interface ChildSpan {
  /** W3C traceparent naming this span as the parent, for the next hop. */
  readonly traceparent: string;
  set(key: string, value: string | number | boolean): void;
  /** Ends the span; an error code (GW_ERR_* or a short cause) marks it failed. */
  end(error?: string): void;
}

export interface RequestTrace {
  /** The trace id the request's spans carry (the gateway's, or a trusted proxy's it continues). */
  readonly traceId: string;
  /** W3C traceparent naming the request's server span (for a next hop that has no span of its own). */
  readonly traceparent: string;
  /** The tracestate to forward with the child's traceparent (a trusted proxy's), or undefined. */
  readonly tracestate: string | undefined;
  /** A client span under the request's server span. */
  child(name: string, attributes: SpanAttributes): ChildSpan;
}

// The trace of the request being served, for the services called deep inside a step (JWKS, IdP, Redis) that
// have no context to read it from. Entered only when tracing is on; read only on those calls.
const current = new AsyncLocalStorage<RequestTrace | undefined>();

/** Makes `trace` the current one for the rest of this request's synchronous run and its continuations. */
export function enterTrace(trace: RequestTrace | undefined): void {
  current.enterWith(trace);
}

export function currentTrace(): RequestTrace | undefined {
  return current.getStore();
}
