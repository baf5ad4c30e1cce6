// Admin listener on its own address: liveness, readiness. Never exposed on the main listener.
import http, { type Server } from 'node:http';

export interface AdminStatus {
  ready(): boolean;
  generation(): number;
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
        ? send(200, { status: 'ready', config_generation: status.generation() })
        : send(503, { status: 'not ready' });
    }
    send(404, { status: 'not found' });
  });
}
