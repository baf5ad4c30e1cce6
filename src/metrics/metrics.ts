// Prometheus metrics (prom-client), one registry per gateway, served as /metrics on the admin listener.
// Every label set is bounded: route names from the config (or "none"), status codes, closed decision and
// reason vocabularies, auth methods, limit kinds, provider names. Never a path, host or subject.
import { Gauge, Registry } from 'prom-client';
import { CellCounter, CellGauge, CellHistogram, type Cell, type HistogramCell } from './series.ts';
import { buildInfo, type BuildInfo } from './build-info.ts';
import { registerProcessMetrics } from './process-metrics.ts';

export type DecisionLabel = 'allow' | 'deny' | 'would_deny' | 'step_up' | 'rate_limited' | 'unauthenticated' | 'public' | 'rejected' | 'would_reject';
export type LimitLabel = 'pre_auth' | 'route' | 'lockout';

/** Upstream exchange time, from sending the request to the last response byte. */
const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Whole-request time: OpenTelemetry's recommended buckets for http.server.request.duration. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/**
 * The semantic conventions' known methods (http.request.method); any other becomes `_OTHER`, so a client
 * cannot mint label values. Index into RouteSeries.duration.
 */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE', 'QUERY', '_OTHER'] as const;
const OTHER_METHOD = METHODS.length - 1;
const METHOD_INDEX: ReadonlyMap<string, number> = new Map(METHODS.slice(0, OTHER_METHOD).map((m, i) => [m, i]));

/** The per-route cells, resolved once per route name (lookups only on the request path). */
export interface RouteSeries {
  /** Indexed by HTTP status. */
  readonly requests: Array<Cell | undefined>;
  /** decision → reason → cell (no key strings built per request). */
  readonly decisions: Partial<Record<DecisionLabel, Map<string, Cell>>>;
  readonly upstream: HistogramCell;
  /** http_server_request_duration_seconds cells: [method index][status], each resolved on its first use. */
  readonly duration: ReadonlyArray<Array<HistogramCell | undefined>>;
  readonly serviceDenied: Cell;
  /** Open live connections by kind (zt_live_connections). */
  readonly live: { readonly websocket: Cell; readonly stream: Cell };
  /** end reason → zt_live_connection_closes_total cell, resolved on the reason's first close. */
  readonly closes: Partial<Record<string, Cell>>;
}

export type LiveKindLabel = 'websocket' | 'stream';

/** The directive label's closed vocabulary (CSP Level 3 fetch, document and navigation directives). */
const CSP_DIRECTIVES: ReadonlySet<string> = new Set([
  'default-src', 'script-src', 'script-src-elem', 'script-src-attr', 'style-src', 'style-src-elem', 'style-src-attr',
  'img-src', 'font-src', 'connect-src', 'media-src', 'object-src', 'frame-src', 'child-src', 'worker-src',
  'manifest-src', 'prefetch-src', 'base-uri', 'form-action', 'frame-ancestors', 'navigate-to', 'sandbox',
  'require-trusted-types-for', 'trusted-types', 'webrtc', 'fenced-frame-src',
]);

let grantsSource: (() => number) | null = null;

/**
 * The active just-in-time grants hook (process-wide: grants live in the gateway's state, one gateway per
 * process). The gauge reads it at scrape time; null (the default) exports 0.
 */
export function setActiveGrantsSource(fn: (() => number) | null): void {
  grantsSource = fn;
}

export interface MetricsOptions {
  /** Export zt_redis_up: only when state.redis is configured (absent otherwise, so no false alert). */
  redisUp?: () => boolean;
  /** The labels of zt_build_info (default: this process's build, build-info.ts). */
  build?: BuildInfo;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #requests = new CellCounter(this.registry, 'zt_requests_total', 'Requests answered, by route and status', ['route', 'status'] as const);
  readonly #decisions = new CellCounter(this.registry, 'zt_decisions_total', 'Access decisions, by route, decision and reason', ['route', 'decision', 'reason'] as const);
  readonly #upstream = new CellHistogram(
    this.registry,
    'zt_upstream_duration_seconds',
    'Upstream exchange time (request sent to last response byte), by route',
    ['route'] as const,
    UPSTREAM_BUCKETS,
  );
  readonly #duration = new CellHistogram(
    this.registry,
    'http_server_request_duration_seconds',
    'Duration of HTTP server requests (OpenTelemetry semantic conventions): request start to response end; to the 101 for an upgrade',
    ['http_route', 'http_request_method', 'http_response_status_code'] as const,
    REQUEST_BUCKETS,
  );
  readonly #limits = new CellCounter(this.registry, 'zt_ratelimit_rejections_total', 'Requests refused by a rate limit (pre_auth, route, lockout)', ['limit'] as const);
  readonly #jwks = new CellCounter(this.registry, 'zt_jwks_fetches_total', 'JWKS fetches by jwt provider and result', ['provider', 'result'] as const);
  readonly #reloads = new CellCounter(this.registry, 'zt_config_reloads_total', 'Config reloads by result', ['result'] as const);
  readonly #authenticated = new CellCounter(this.registry, 'zt_authenticated_requests_total', 'Requests with a verified caller, by method and whether it used MFA', ['method', 'mfa'] as const);
  readonly #service = new CellCounter(this.registry, 'zt_service_requests_total', 'Service-to-service requests, by whether the caller proved itself with mTLS', ['mtls'] as const);
  readonly #serviceDenied = new CellCounter(this.registry, 'zt_service_denied_total', 'Service-to-service requests denied by policy (lateral-movement attempts), by route', ['route'] as const);
  readonly #live = new CellGauge(this.registry, 'zt_live_connections', 'Open live connections (upgraded WebSockets, responses still streaming), by route and kind', ['route', 'kind'] as const);
  readonly #liveCloses = new CellCounter(this.registry, 'zt_live_connection_closes_total', 'Live connections ended, by route and end reason', ['route', 'reason'] as const);
  readonly #csp = new CellCounter(this.registry, 'zt_csp_violations_total', 'Content-Security-Policy violations reported by browsers, by route and directive', ['route', 'directive'] as const);
  readonly #cspCells = new Map<string, Cell>();
  readonly #epHealthy = new CellGauge(this.registry, 'zt_upstream_endpoint_healthy', '1 when the upstream endpoint is neither ejected nor failing its health check, by route and endpoint index (across workers: the lowest)', ['route', 'endpoint'] as const, 'min');
  readonly #epInflight = new CellGauge(this.registry, 'zt_upstream_endpoint_inflight', 'Requests in flight to the upstream endpoint, by route and endpoint index', ['route', 'endpoint'] as const);
  readonly #epEjections = new CellCounter(this.registry, 'zt_upstream_endpoint_ejections_total', 'Outlier ejections of the upstream endpoint, by route and endpoint index', ['route', 'endpoint'] as const);
  readonly #retries = new CellCounter(this.registry, 'zt_upstream_retries_total', 'Upstream requests sent again after a retryable failure, by route', ['route'] as const);
  #websockets = 0;
  #certificateExpiries: ReadonlyMap<string, number> = new Map();
  readonly #routes = new Map<string, RouteSeries>();
  /** method → [mfa false, mfa true]. */
  readonly #byMethod = new Map<string, [Cell, Cell]>();
  readonly #limitCells: Record<LimitLabel, Cell>;
  readonly #serviceCells: { mtls: Cell; other: Cell };

  constructor(opts: MetricsOptions = {}) {
    registerProcessMetrics(this.registry, opts.build ?? buildInfo());
    const websockets = () => this.#websockets;
    new Gauge({
      name: 'zt_websockets_active',
      help: 'Open WebSocket connections',
      registers: [this.registry],
      aggregator: 'sum',
      collect() {
        this.set(websockets());
      },
    });
    new Gauge({
      name: 'zt_grants_active',
      help: 'Active just-in-time access grants',
      registers: [this.registry],
      aggregator: 'max', // grants are shared state: every worker reports the same number
      collect() {
        this.set(grantsSource?.() ?? 0);
      },
    });
    const redisUp = opts.redisUp;
    if (redisUp) {
      new Gauge({
        name: 'zt_redis_up',
        help: '1 when the shared-state Redis connection is ready, else 0',
        registers: [this.registry],
        aggregator: 'min', // across workers: up only if every worker's connection is
        collect() {
          this.set(redisUp() ? 1 : 0);
        },
      });
    }
    const expiries = () => this.#certificateExpiries;
    new Gauge({
      name: 'zt_certificate_expiry_seconds',
      help: 'Seconds until the earliest certificate in each certificate file the config names expires (negative: expired)',
      labelNames: ['file'] as const,
      registers: [this.registry],
      aggregator: 'min', // every worker reads the same files
      collect() {
        this.reset();
        const now = Date.now();
        for (const [file, notAfter] of expiries()) this.set({ file }, Math.round((notAfter - now) / 1000));
      },
    });
    this.#limitCells = {
      pre_auth: this.#limits.cell({ limit: 'pre_auth' }),
      route: this.#limits.cell({ limit: 'route' }),
      lockout: this.#limits.cell({ limit: 'lockout' }),
    };
    this.#serviceCells = { mtls: this.#service.cell({ mtls: 'true' }), other: this.#service.cell({ mtls: 'false' }) };
  }

  /** Resolves (once) the cells of a route; called for every route when a config is installed. */
  /** A route's upstream cells (balancer state), resolved when the runtime builds the route's endpoints. */
  upstreamCells(route: string): { retries: Cell; endpoint(index: number): { healthy: Cell; inflight: Cell; ejections: Cell } } {
    return {
      retries: this.#retries.cell({ route }),
      endpoint: (index: number) => {
        const labels = { route, endpoint: String(index) };
        return { healthy: this.#epHealthy.cell(labels), inflight: this.#epInflight.cell(labels), ejections: this.#epEjections.cell(labels) };
      },
    };
  }

  route(name: string): RouteSeries {
    let s = this.#routes.get(name);
    if (s === undefined) {
      s = {
        requests: [],
        decisions: {},
        upstream: this.#upstream.cell({ route: name }),
        duration: METHODS.map(() => []),
        serviceDenied: this.#serviceDenied.cell({ route: name }),
        live: { websocket: this.#live.cell({ route: name, kind: 'websocket' }), stream: this.#live.cell({ route: name, kind: 'stream' }) },
        closes: {},
      };
      this.#routes.set(name, s);
    }
    return s;
  }

  request(route: RouteSeries, status: number, routeName: string): void {
    let c = route.requests[status];
    if (c === undefined) route.requests[status] = c = this.#requests.cell({ route: routeName, status: String(status) });
    c.n++;
  }

  /** One request's whole duration (http_server_request_duration_seconds). */
  requestDuration(route: RouteSeries, routeName: string, method: string | undefined, status: number, seconds: number): void {
    const m = (method === undefined ? undefined : METHOD_INDEX.get(method)) ?? OTHER_METHOD;
    const byStatus = route.duration[m] as Array<HistogramCell | undefined>;
    let c = byStatus[status];
    if (c === undefined) {
      const labels = { http_route: routeName, http_request_method: METHODS[m] as string, http_response_status_code: String(status) };
      byStatus[status] = c = this.#duration.cell(labels);
    }
    c.observe(seconds);
  }

  decision(route: RouteSeries, routeName: string, decision: DecisionLabel, reason: string): void {
    const byReason = (route.decisions[decision] ??= new Map());
    let c = byReason.get(reason);
    if (c === undefined) byReason.set(reason, (c = this.#decisions.cell({ route: routeName, decision, reason })));
    c.n++;
  }

  authenticated(method: string, mfa: boolean): void {
    let c = this.#byMethod.get(method);
    if (c === undefined) {
      c = [this.#authenticated.cell({ method, mfa: 'false' }), this.#authenticated.cell({ method, mfa: 'true' })];
      this.#byMethod.set(method, c);
    }
    c[mfa ? 1 : 0].n++;
  }

  serviceCall(mtls: boolean): void {
    (mtls ? this.#serviceCells.mtls : this.#serviceCells.other).n++;
  }

  /** One reported violation; `directive` outside the CSP vocabulary counts as `other`. */
  cspViolation(route: string, directive: string): void {
    const d = CSP_DIRECTIVES.has(directive) ? directive : 'other';
    const key = `${route}\0${d}`;
    let cell = this.#cspCells.get(key);
    if (cell === undefined) this.#cspCells.set(key, (cell = this.#csp.cell({ route, directive: d })));
    cell.n++;
  }

  rateLimited(limit: LimitLabel): void {
    this.#limitCells[limit].n++;
  }

  jwksFetch(provider: string, ok: boolean): void {
    this.#jwks.cell({ provider, result: ok ? 'ok' : 'error' }).n++;
  }

  configReload(ok: boolean): void {
    this.#reloads.cell({ result: ok ? 'ok' : 'error' }).n++;
  }

  /** A live connection opened (a WebSocket's 101, a response head relayed). */
  liveOpened(route: RouteSeries, kind: LiveKindLabel): void {
    route.live[kind].n++;
    if (kind === 'websocket') this.#websockets++;
  }

  liveClosed(route: RouteSeries, routeName: string, kind: LiveKindLabel, reason: string): void {
    route.live[kind].n--;
    if (kind === 'websocket') this.#websockets--;
    let c = route.closes[reason];
    if (c === undefined) route.closes[reason] = c = this.#liveCloses.cell({ route: routeName, reason });
    c.n++;
  }

  /** The files' certificate expiries (ms since the epoch, by path), read at start and after each reload. */
  certificateExpiries(expiries: ReadonlyMap<string, number>): void {
    this.#certificateExpiries = expiries;
  }

  /** Prometheus text exposition. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
