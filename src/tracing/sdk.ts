// The OpenTelemetry SDK behind GatewayTracer: a private TracerProvider (never registered globally: the
// gateway may be embedded in a process with its own), ParentBased(TraceIdRatioBased) sampling, a batch
// processor and the OTLP/HTTP exporter (JSON). Imported only by index.ts's loadTracer, when configured.
import { defaultTextMapGetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Link, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import type { Config } from '../config/index.ts';
import { headerOf, type ChildSpan, type RequestContext, type SpanAttributes } from '../core/index.ts';
import { serverAttributes } from './attributes.ts';
import type { GatewayTracer, ServerEnd, ServerTrace } from './types.ts';

type OtlpConfig = NonNullable<Config['tracing']['otlp']>;

const propagator = new W3CTraceContextPropagator();

export function createSdkTracer(cfg: Config['tracing'], otlp: OtlpConfig, fingerprint: string): GatewayTracer {
  const exporter = new OTLPTraceExporter({ url: otlp.endpoint, headers: { ...otlp.headers } });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'zt-gateway' }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.sample_ratio) }),
    // A second between exports: spans reach the collector soon after the request, in few POSTs.
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 1000 })],
  });
  const tracer = provider.getTracer('zt-gateway');
  const includeSubject = cfg.include_subject;
  return {
    fingerprint,
    startRequest(ctx, httpVersion) {
      const { parent, links, tracestate } = inbound(ctx);
      const span = tracer.startSpan(ctx.method, { kind: SpanKind.SERVER, attributes: serverAttributes(ctx, httpVersion), links }, parent);
      return new SdkServerTrace(tracer, span, ctx.method, tracestate, includeSubject);
    },
    shutdown: () => provider.shutdown(),
  };
}

/**
 * The parent a request's span continues: a trusted proxy's valid traceparent (with its tracestate, when the
 * normalizer kept it); anyone else's starts a new trace, linked to the one the client named.
 */
function inbound(ctx: RequestContext): { parent: Context; links: Link[]; tracestate: string | undefined } {
  if (ctx.traceId === undefined) return { parent: ROOT_CONTEXT, links: [], tracestate: undefined };
  const tracestate = keptTracestate(ctx);
  const carrier = { traceparent: headerOf(ctx, 'traceparent'), ...(tracestate === undefined ? {} : { tracestate }) };
  const extracted = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
  const remote = trace.getSpanContext(extracted);
  if (ctx.viaTrustedProxy) return { parent: extracted, links: [], tracestate };
  return { parent: ROOT_CONTEXT, links: remote ? [{ context: remote, attributes: { 'zt.link': 'client_traceparent' } }] : [], tracestate: undefined };
}

/** The client's tracestate if the normalizer forwarded it (it drops an oversized or non-printable one). */
function keptTracestate(ctx: RequestContext): string | undefined {
  const h = ctx.upstreamHeaders;
  let value: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    if ((h[i] as string).toLowerCase() === 'tracestate') value = value === undefined ? (h[i + 1] as string) : `${value},${h[i + 1] as string}`;
  }
  return value;
}

function traceparentOf(span: Span): string {
  const sc = span.spanContext();
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`;
}

class SdkServerTrace implements ServerTrace {
  readonly traceId: string;
  readonly traceparent: string;
  readonly tracestate: string | undefined;
  readonly #tracer: Tracer;
  readonly #span: Span;
  readonly #context: Context;
  readonly #includeSubject: boolean;
  readonly #method: string;

  constructor(tracer: Tracer, span: Span, method: string, tracestate: string | undefined, includeSubject: boolean) {
    this.#tracer = tracer;
    this.#method = method;
    this.#span = span;
    this.#context = trace.setSpan(ROOT_CONTEXT, span);
    this.traceId = span.spanContext().traceId;
    this.traceparent = traceparentOf(span);
    this.tracestate = tracestate;
    this.#includeSubject = includeSubject;
  }

  child(name: string, attributes: SpanAttributes): ChildSpan {
    return new SdkChildSpan(this.#tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, this.#context));
  }

  end(facts: ServerEnd): void {
    const span = this.#span;
    if (facts.route !== undefined) {
      span.updateName(`${this.#method} ${facts.route}`); // semantic conventions: "{method} {http.route}"
      span.setAttribute('http.route', facts.route);
      span.setAttribute('zt.route', facts.route);
    }
    span.setAttribute('http.response.status_code', facts.status);
    span.setAttribute('zt.decision', facts.decision);
    if (facts.code !== undefined) span.setAttribute('zt.error.code', facts.code);
    if (this.#includeSubject && facts.subject !== undefined) span.setAttribute('enduser.id', facts.subject);
    // Server spans: only 5xx is the server's error (semantic conventions); a 4xx is the client's.
    if (facts.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, ...(facts.code === undefined ? {} : { message: facts.code }) });
    span.end();
  }
}

class SdkChildSpan implements ChildSpan {
  readonly #span: Span;
  readonly traceparent: string;

  constructor(span: Span) {
    this.#span = span;
    this.traceparent = traceparentOf(span);
  }

  set(key: string, value: string | number | boolean): void {
    this.#span.setAttribute(key, value);
  }

  end(error?: string): void {
    if (error !== undefined) {
      this.#span.setAttribute('error.type', error);
      this.#span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    }
    this.#span.end();
  }
}
