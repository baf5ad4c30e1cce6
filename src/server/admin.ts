// Admin listener on its own address: liveness, readiness, Prometheus metrics. Never exposed on the main listener.
import http, { type Server } from 'node:http';

export interface AdminStatus {
  ready(): boolean;
  generation(): number;
  /** Extra fields for /readyz (e.g. the workers of a cluster). */
  details?(): Record<string, unknown>;
  /** Prometheus text exposition for /metrics; absent: 404. */
  metrics?(): Promise<{ contentType: string; body: string }>;
}

export function createAdminListener(status: AdminStatus): Server {
  return http.createServer((req, res) => {
    const send = (code: number, body: object) => {
      const text = JSON.stringify(body);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    };
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { status: 'method not allowed' });
    if (path === '/healthz') return send(200, { status: 'ok' });
    if (path === '/readyz') {
      return status.ready()
        ? send(200, { status: 'ready', config_generation: status.generation(), ...status.details?.() })
        : send(503, { status: 'not ready', ...status.details?.() });
    }
    if (path === '/metrics' && status.metrics) {
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
  });
}
