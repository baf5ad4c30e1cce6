// Who may read /metrics on the admin listener (admin.metrics): route names, deny reasons and subjects' traffic
// are reconnaissance, so it takes the admin API's credentials (bearer token or client certificate) unless the
// config says public. /healthz and /readyz never ask: probes carry no credentials.
import type { IncomingMessage } from 'node:http';
import { metricsAccess, type Config } from '../config/index.ts';
import { caller } from './admin-api.ts';

/** The check for /metrics requests. `admin` is read per request, so a reload that changes the token applies at once. */
export function metricsGuard(admin: () => Config['admin'], mtls: boolean): (req: IncomingMessage) => boolean {
  return (req) => {
    const current = admin();
    return metricsAccess(current) === 'public' || caller(req, current?.token_hash, mtls) !== null;
  };
}
