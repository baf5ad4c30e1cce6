// Admin listener on its own address: liveness, readiness (with the package version), Prometheus metrics and the admin API under /admin/ (admin-api.ts).
// /metrics takes the admin credentials unless admin.metrics is public (metrics-auth.ts); the probes never do.
// Never exposed on the main listener. HTTPS (and client-certificate admins) when admin.tls is set.
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import { buildInfo } from '../metrics/index.ts';

export interface AdminStatus {
  ready(): boolean;
  generation(): number;
  /** Extra fields for /readyz (e.g. the workers of a cluster). */
  details?(): Record<string, unknown>;
  /** Prometheus text exposition for /metrics; absent: 404. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** Whether this caller may read /metrics (metrics-auth.ts); absent: anyone who reaches the listener. */
  metricsAllowed?(req: IncomingMessage): boolean;
}

export interface AdminTls {
  cert: string;
  key: string;
  ca: string | undefined;
}

export function createAdminListener(
  status: AdminStatus,
  api?: (req: IncomingMessage, res: ServerResponse) => void,
  tls?: AdminTls,
): Server {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const send = (code: number, body: object) => {
      const text = JSON.stringify(body);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    };
    const path = (req.url ?? '').split('?')[0] as string;
    if (api && (path === '/admin' || path.startsWith('/admin/'))) return api(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { status: 'method not allowed' });
    if (path === '/healthz') return send(200, { status: 'ok' });
    if (path === '/readyz') {
      // Probes need no credentials: the version shows a rollout's progress; the commit (which exact source
      // runs) stays behind /metrics' credentials (zt_build_info).
      const { version } = buildInfo();
      return status.ready()
        ? send(200, { status: 'ready', version, config_generation: status.generation(), ...status.details?.() })
        : send(503, { status: 'not ready', version, ...status.details?.() });
    }
    if (path === '/metrics' && status.metrics) {
      if (status.metricsAllowed && !status.metricsAllowed(req)) {
        const text = JSON.stringify({ status: 'admin credentials are required' });
        res.writeHead(401, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          'cache-control': 'no-store',
          'www-authenticate': 'Bearer realm="zt-gateway-admin"',
        });
        res.end(req.method === 'HEAD' ? undefined : text);
        return;
      }
      status.metrics().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        () => send(503, { status: 'metrics unavailable' }),
      );
      return;
    }
    send(404, { status: 'not found' });
  };
  if (!tls) return http.createServer(handler);
  return https.createServer(adminContextOptions(tls), handler);
}

/** The admin listener's TLS options (also for a reload that rotates its certificate or client CA). */
export function adminContextOptions(tls: AdminTls) {
  // Client certificates are asked for, not required: /healthz probes and token callers connect without one.
  return { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: false } : {}) } as const;
}
