// Upstreams: URL checked at load, one undici Pool per distinct connection setting, reused across reloads.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Pool } from 'undici';
import { ConfigError, type UpstreamConfig } from '../config/index.ts';

/** One endpoint of a route's upstream: what a request or WebSocket handshake needs to reach it. */
export interface EndpointTarget {
  /** Position in `upstream.endpoints` (0 for the `url:` form): the `endpoint` metric label. */
  readonly index: number;
  /** scheme://host:port, no trailing slash. */
  readonly origin: string;
  /** The Host header sent upstream when the route does not preserve the client's. */
  readonly hostHeader: string;
  readonly preserveHost: boolean;
  readonly poolKey: string;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  /** TLS material for the WebSocket path (http-proxy-3 uses node:https). */
  readonly tls: Readonly<{ ca?: string; cert?: string; key?: string; servername?: string }> | null;
  readonly connectTimeout: number;
  readonly connections: number;
  /** upstream.http2: undici's HTTP/2 (ALPN h2 on https, h2c with prior knowledge on http). */
  readonly http2: boolean;
}

export type Balance = 'round_robin' | 'least_request' | 'random';
export type RetryOn = 'connect_failure' | 'reset' | '502' | '503' | '504';

export interface RetryPolicy {
  readonly attempts: number;
  readonly connectFailure: boolean;
  readonly reset: boolean;
  /** Upstream statuses that are retried (a subset of 502, 503, 504). */
  readonly statuses: ReadonlySet<number>;
  readonly percent: number;
  readonly minConcurrency: number;
}

export interface HealthPolicy {
  readonly path: string;
  readonly interval: number;
  readonly timeout: number;
  readonly healthyAfter: number;
  readonly unhealthyAfter: number;
}

export interface OutlierPolicy {
  readonly consecutiveErrors: number;
  readonly ejection: number;
}

/** strip_prefix / rewrite_prefix, compiled: `from` (no trailing slash, '' for /) becomes `to` (same form). */
export interface PrefixRewrite {
  readonly from: string;
  readonly to: string;
}

/** A route's upstream: its endpoints (the fields of the first one are repeated at the top level). */
export interface UpstreamTarget extends EndpointTarget {
  readonly endpoints: readonly EndpointTarget[];
  /** The signed assertion's audience: upstream.audience, else the first endpoint's origin. */
  readonly audience: string;
  readonly balance: Balance;
  readonly retries: RetryPolicy | null;
  readonly outlier: OutlierPolicy | null;
  readonly health: HealthPolicy | null;
  readonly rewrite: PrefixRewrite | null;
}

/** Validates and resolves an upstream: frozen; throws ConfigError with `path` relative to the upstream. */
export function compileUpstream(cfg: UpstreamConfig, baseDir: string, matchPath = '/'): UpstreamTarget {
  if ((cfg.url === undefined) === (cfg.endpoints === undefined)) {
    throw new ConfigError('CFG_CONFLICT', [], 'upstream needs exactly one of url and endpoints');
  }
  const texts = cfg.endpoints ?? [cfg.url as string];
  const urls = texts.map((t, i) => upstreamUrl(t, cfg.endpoints ? ['endpoints', i] : ['url']));
  const first = urls[0] as URL;
  if (urls.some((u) => u.protocol !== first.protocol)) throw new ConfigError('CFG_CONFLICT', ['endpoints'], 'all endpoints must use the same scheme');
  if (new Set(urls.map((u) => u.origin)).size !== urls.length) throw new ConfigError('CFG_DUPLICATE', ['endpoints'], 'an endpoint is listed twice');
  if (cfg.tls && first.protocol !== 'https:') throw new ConfigError('CFG_CONFLICT', ['tls'], 'upstream.tls needs an https:// URL');
  const read = (p: string | undefined) => (p === undefined ? undefined : readPem(resolve(baseDir, p)));
  const tls = cfg.tls
    ? Object.freeze({ ca: read(cfg.tls.ca), cert: read(cfg.tls.cert), key: read(cfg.tls.key), servername: cfg.tls.servername })
    : null;
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) throw new ConfigError('CFG_CONFLICT', ['tls'], 'upstream.tls needs both cert and key');
  const endpoints = urls.map((url, index): EndpointTarget => {
    const poolKey = createHash('sha256')
      .update(JSON.stringify([url.origin, cfg.connections, cfg.connect_timeout, tls, cfg.http2]))
      .digest('base64url');
    return Object.freeze({
      index,
      origin: url.origin,
      hostHeader: url.host,
      preserveHost: cfg.preserve_host,
      poolKey,
      headersTimeout: cfg.timeout,
      bodyTimeout: cfg.body_timeout,
      tls,
      connectTimeout: cfg.connect_timeout,
      connections: cfg.connections,
      http2: cfg.http2,
    });
  });
  const r = cfg.retries;
  const retries: RetryPolicy | null = r
    ? Object.freeze({
        attempts: r.attempts,
        connectFailure: r.on.includes('connect_failure'),
        reset: r.on.includes('reset'),
        statuses: new Set(r.on.map(String).filter((o) => /^\d+$/.test(o)).map(Number)),
        percent: r.budget.percent,
        minConcurrency: r.budget.min_concurrency,
      })
    : null;
  const h = cfg.health;
  if (h && h.timeout >= h.interval) throw new ConfigError('CFG_CONFLICT', ['health', 'timeout'], 'health.timeout must be shorter than health.interval');
  return Object.freeze({
    ...(endpoints[0] as EndpointTarget),
    endpoints: Object.freeze(endpoints),
    audience: cfg.audience ?? first.origin,
    balance: cfg.balance,
    retries,
    outlier: cfg.outlier ? Object.freeze({ consecutiveErrors: cfg.outlier.consecutive_errors, ejection: cfg.outlier.ejection }) : null,
    health: h ? Object.freeze({ path: h.path, interval: h.interval, timeout: h.timeout, healthyAfter: h.healthy_after, unhealthyAfter: h.unhealthy_after }) : null,
    rewrite: compileRewrite(cfg.strip_prefix, cfg.rewrite_prefix, matchPath),
  });
}

/** '' for '/', else the path without a trailing slash. */
const bare = (p: string): string => (p === '/' ? '' : p.replace(/\/$/, ''));

/**
 * strip_prefix must lie within the route's match.path on a segment boundary (so every request the route takes
 * starts with it); rewrite_prefix alone replaces the literal part of match.path.
 */
function compileRewrite(strip: string | undefined, rewrite: string | undefined, matchPath: string): PrefixRewrite | null {
  if (strip === undefined && rewrite === undefined) return null;
  const exact = matchPath.startsWith('=');
  const raw = exact ? matchPath.slice(1) : matchPath;
  const brace = raw.indexOf('{');
  // The literal segments before any template parameter.
  const literal = bare(brace === -1 ? raw : raw.slice(0, raw.lastIndexOf('/', brace)));
  const from = strip === undefined ? literal : bare(strip);
  if (from.includes('{')) throw new ConfigError('CFG_BAD_VALUE', ['strip_prefix'], 'strip_prefix cannot contain a template parameter');
  if (!(literal === from || literal.startsWith(`${from}/`))) {
    throw new ConfigError('CFG_CONFLICT', [strip === undefined ? 'rewrite_prefix' : 'strip_prefix'], `strip_prefix must be a segment prefix of match.path (${matchPath})`);
  }
  return Object.freeze({ from, to: rewrite === undefined ? '' : bare(rewrite) });
}

/** The path forwarded upstream: the authorized path with the route's compiled prefix rewrite and nothing else. */
/**
 * Where `path` leaves `prefix`, comparing segment by segment with each segment's `;params` set aside (routing and
 * authorization read `/app;x/secret` as `/app/secret`, and so do Tomcat, Jetty and Spring): the params of the
 * prefix's last segment and the rest. undefined when `path` is not under `prefix` in that reading.
 */
function splitAtPrefix(prefix: string, path: string): { params: string; rest: string } | undefined {
  if (prefix === '') return { params: '', rest: path };
  let at = 0;
  let params = '';
  for (const want of prefix.slice(1).split('/')) {
    if (path.charCodeAt(at) !== 47) return undefined;
    const end = path.indexOf('/', at + 1);
    const segment = path.slice(at + 1, end === -1 ? path.length : end);
    const semi = segment.indexOf(';');
    if ((semi === -1 ? segment : segment.slice(0, semi)) !== want) return undefined;
    params = semi === -1 ? '' : segment.slice(semi);
    at = end === -1 ? path.length : end;
  }
  return { params, rest: path.slice(at) };
}

/**
 * The path forwarded for `path` (the request target's, `;params` included). undefined when the path is not
 * under `from` as written though the route matched it (another spelling): the caller refuses it, never
 * forwarding it unrewritten. The `;params` of the last replaced segment move to the new prefix (stripped with it).
 */
export function rewritePath(rewrite: PrefixRewrite, path: string): string | undefined {
  const { from, to } = rewrite;
  const cut = splitAtPrefix(from, path);
  if (cut === undefined) return undefined;
  const out = to === '' ? cut.rest : to + cut.params + cut.rest;
  return out === '' ? '/' : out;
}

/**
 * The inverse for Location and Set-Cookie Path (nginx's proxy_redirect default): undefined when outside `to`,
 * or when the result would leave the origin (`//host`, `/\host`: a browser follows those to another site).
 */
export function unrewritePath(rewrite: PrefixRewrite, path: string): string | undefined {
  const { from, to } = rewrite;
  const cut = splitAtPrefix(to, path);
  if (cut === undefined) return undefined;
  const out = from === '' ? cut.rest : from + cut.params + cut.rest;
  if (out.startsWith('//') || out.startsWith('/\\')) return undefined;
  return out === '' ? '/' : out;
}

function upstreamUrl(text: string, at: (string | number)[]): URL {
  const bad = (message: string) => new ConfigError('CFG_BAD_VALUE', at, message);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad('invalid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('upstream URL must be http:// or https://');
  if (url.username || url.password) throw bad('upstream URL must not contain credentials');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw bad('upstream URL must be an origin (no path, query or fragment)');
  }
  return url;
}

function readPem(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('CFG_BAD_FILE', ['tls'], `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** An undici Pool to one endpoint, with its TLS settings (certificates always verified). */
export function endpointPool(target: EndpointTarget, connections: number): Pool {
  return new Pool(target.origin, {
    connections,
    // HTTP/2: streams multiplexed per connection (the upstream's SETTINGS may lower it); h2c on http://.
    ...(target.http2
      ? { allowH2: true, pipelining: 100, h2Options: { maxConcurrentStreams: 100 }, ...(target.origin.startsWith('http:') ? { useH2c: true } : {}) }
      : { pipelining: 1, allowH2: false }), // undici 8 offers h2 by ALPN unless told not to
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    connect: {
      timeout: target.connectTimeout,
      ...(target.tls ?? {}),
      rejectUnauthorized: true,
    },
  });
}

/** Pools shared by successive configs; a reload closes only the pools no route uses any more. */
export class PoolRegistry {
  readonly #pools = new Map<string, Pool>();

  get(target: EndpointTarget): Pool {
    let pool = this.#pools.get(target.poolKey);
    if (pool === undefined) {
      pool = endpointPool(target, target.connections);
      this.#pools.set(target.poolKey, pool);
    }
    return pool;
  }

  /** Closes (gracefully: in-flight requests finish) every pool whose key is not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, pool] of this.#pools) {
      if (!keep.has(key)) {
        this.#pools.delete(key);
        pool.close().catch(() => undefined);
      }
    }
  }

  async closeAll(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }
}
