// Upstreams: URL checked at load, one undici Pool per distinct connection setting, reused across reloads.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Pool } from 'undici';
import { ConfigError, type UpstreamConfig } from '../config/index.ts';

export interface UpstreamTarget {
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

/** Validates and resolves an upstream: frozen; throws ConfigError with `path` relative to the upstream. */
export function compileUpstream(cfg: UpstreamConfig, baseDir: string): UpstreamTarget {
  const url = upstreamUrl(cfg.url);
  if (cfg.tls && url.protocol !== 'https:') throw new ConfigError('CFG_CONFLICT', ['tls'], 'upstream.tls needs an https:// URL');
  const read = (p: string | undefined) => (p === undefined ? undefined : readPem(resolve(baseDir, p)));
  const tls = cfg.tls
    ? Object.freeze({ ca: read(cfg.tls.ca), cert: read(cfg.tls.cert), key: read(cfg.tls.key), servername: cfg.tls.servername })
    : null;
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) throw new ConfigError('CFG_CONFLICT', ['tls'], 'upstream.tls needs both cert and key');
  const poolKey = createHash('sha256')
    .update(JSON.stringify([url.origin, cfg.connections, cfg.connect_timeout, tls, cfg.http2]))
    .digest('base64url');
  return Object.freeze({
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
}

function upstreamUrl(text: string): URL {
  const bad = (message: string) => new ConfigError('CFG_BAD_VALUE', ['url'], message);
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

/** Pools shared by successive configs; a reload closes only the pools no route uses any more. */
export class PoolRegistry {
  readonly #pools = new Map<string, Pool>();

  get(target: UpstreamTarget): Pool {
    let pool = this.#pools.get(target.poolKey);
    if (pool === undefined) {
      pool = new Pool(target.origin, {
        connections: target.connections,
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
