// CORS per route: exact origin allowlist, answered by the gateway. Preflights never reach authentication
// or the upstream; a disallowed origin gets no CORS headers at all.
import type { CorsConfig } from '../config/index.ts';

export interface CorsPolicy {
  /** Headers for a preflight from `origin`, or null when the preflight must be refused. */
  preflight(origin: string, method: string, requestHeaders: string | undefined): string[] | null;
  /** Headers to add to an actual response for `origin` (empty when the origin is not allowed). */
  actual(origin: string | undefined): readonly string[];
}

/** Frozen; the schema already checked every value. */
export function compileCors(cfg: CorsConfig): CorsPolicy {
  const origins = new Set(cfg.origins.map((o) => o.toLowerCase()));
  const methods = new Set(cfg.methods);
  const allowedHeaders = new Set(cfg.headers.map((h) => h.toLowerCase()));
  const maxAge = String(Math.round(cfg.max_age / 1000));
  const methodList = cfg.methods.join(', ');
  const headerList = cfg.headers.join(', ');
  const credentials = cfg.credentials ? ['access-control-allow-credentials', 'true'] : [];
  const expose = cfg.expose_headers.length ? ['access-control-expose-headers', cfg.expose_headers.join(', ')] : [];
  const vary = ['vary', 'Origin'];

  return Object.freeze<CorsPolicy>({
    preflight(origin, method, requestHeaders) {
      if (!origins.has(origin.toLowerCase()) || !methods.has(method)) return null;
      if (requestHeaders) {
        for (const h of requestHeaders.split(',')) {
          const name = h.trim().toLowerCase();
          if (name && !allowedHeaders.has(name)) return null;
        }
      }
      return [
        'access-control-allow-origin', origin,
        'access-control-allow-methods', methodList,
        ...(headerList ? ['access-control-allow-headers', headerList] : []),
        'access-control-max-age', maxAge,
        ...credentials,
        'vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
      ];
    },
    actual(origin) {
      if (origin === undefined || !origins.has(origin.toLowerCase())) return vary;
      return ['access-control-allow-origin', origin, ...credentials, ...expose, ...vary];
    },
  });
}
