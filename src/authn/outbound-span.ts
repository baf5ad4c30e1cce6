// Client spans for the gateway's own calls to identity providers (JWKS and discovery documents, token and
// userinfo endpoints), under the span of the request that caused them. Only with tracing.otlp: otherwise
// no request has a trace and currentTrace() is undefined. These calls are rare (cached keys, logins).
import { currentTrace, type ChildSpan } from '../core/index.ts';

/** Opens a span for a call to `url` when the current request is traced; never records the query string. */
export function outboundSpan(url: string | URL, method: string, call: string): ChildSpan | undefined {
  const trace = currentTrace();
  if (trace === undefined) return undefined;
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return undefined;
  }
  return trace.child(`${method} ${call}`, {
    'http.request.method': method,
    'server.address': u.hostname,
    'server.port': u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port),
    'url.path': u.pathname,
    'zt.call': call,
  });
}

/** Ends `span` when `promise` settles: its status code, or the error's name. Returns the promise unchanged. */
export function endWith<T extends { status?: number; statusCode?: number }>(span: ChildSpan | undefined, promise: Promise<T>): Promise<T> {
  if (span === undefined) return promise;
  promise.then(
    (res) => {
      const status = res.statusCode ?? res.status;
      if (status !== undefined) span.set('http.response.status_code', status);
      span.end(status !== undefined && status >= 400 ? String(status) : undefined);
    },
    (err: unknown) => span.end(err instanceof Error ? err.name : 'error'),
  );
  return promise;
}
