// The per-request context: built once by normalize, read by every later stage. Stages never look at
// req.url or req.headers again (DESIGN.md §1: the authorized target is the forwarded target).
import type { Socket } from 'node:net';
import type { Identity } from './identity.ts';
import type { RequestTrace } from './trace.ts';
import type { CanonicalHost, CanonicalTarget, Decision, RiskAssessment, ValidationReport } from './request.ts';

/** What every stage may read of the route a request matched; the orchestrator's compiled route extends it. */
export interface RouteRef {
  /** Position in the file: earlier routes win. */
  readonly index: number;
  readonly name: string;
  readonly public: boolean;
  /** report-only: decide and audit, but forward anyway. */
  readonly mode: 'enforce' | 'report-only';
}

export interface RequestContext<R extends RouteRef = RouteRef> {
  readonly id: string;
  readonly startNs: bigint;
  readonly method: string;
  readonly host: CanonicalHost;
  readonly target: CanonicalTarget;
  /** The client's address: the socket peer, or the right-most untrusted X-Forwarded-For entry. */
  readonly clientIp: string;
  readonly peerIp: string;
  readonly viaTrustedProxy: boolean;
  readonly secure: boolean;
  readonly authorization: string | undefined;
  /** The request's header lines as received (name, value, …); stages read one by name with headerOf(). */
  readonly rawHeaders: readonly string[];
  /**
   * The client connection: its verified TLS peer (certificate checks) and per-connection caches. Stages read
   * it here, never from a request object. A forward-auth check gets one without a peer certificate.
   */
  readonly connection: Socket;
  readonly hasBody: boolean;
  /** Headers safe to forward; the gateway's own (X-Forwarded-*, identity) are appended later. */
  readonly upstreamHeaders: string[];
  /** X-Forwarded-For chain as forwarded (trusted chain + peer). */
  readonly forwardedFor: string;
  /** Forwarded (RFC 7239) elements from trusted proxies, to which the gateway appends its own. */
  readonly forwardedChain: string | undefined;
  /** X-Forwarded-Proto / -Host as forwarded: a trusted proxy's (validated) or the gateway's own. */
  readonly forwardedProto: 'http' | 'https';
  readonly forwardedHost: string;
  /** W3C trace id of the request's valid traceparent (tracing.propagate only); logged, never a label. */
  readonly traceId?: string | undefined;
  /** Set by the pipeline when tracing.otlp is configured (else undefined): steps open child spans on it. */
  trace?: RequestTrace | undefined;
  route: R | undefined;
  identity: Identity | null;
  decision: Decision | null;
  /** Set by the validate stage when report-only forwarded a request it would have refused. */
  validation?: ValidationReport;
  /** Set by the assess stage on routes that score risk. */
  risk?: RiskAssessment | undefined;
}
