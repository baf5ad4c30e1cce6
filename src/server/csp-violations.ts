// GET /admin/v1/csp-violations[?route=]: what browsers reported against each route's Content-Security-Policy,
// with the policy as sent and the inline hashes learned (`learn: true`): everything `csp suggest` reads.
import { GatewayError } from '../core/index.ts';
import type { CompiledConfig } from '../pipeline/index.ts';
import type { CspStore, CspViolationView } from '../response/index.ts';

export interface CspRouteView {
  route: string;
  /** null: the route sends no CSP. */
  report_only: boolean | null;
  learn: boolean;
  policy: Readonly<Record<string, readonly string[]>> | null;
  violations: CspViolationView[];
  learned: Record<string, string[]>;
}

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Every route with a report or a learned hash, or the one named (404 when the config has no such route). */
export function cspViolations(compiled: CompiledConfig, store: CspStore, route: string | null): { routes: CspRouteView[] } {
  if (route !== null && !ROUTE_NAME.test(route)) throw new GatewayError('GW_ERR_BAD_REQUEST', 'route names are 1-64 of A-Z a-z 0-9 _ . -');
  const byName = new Map(compiled.routes.map((r) => [r.name, r]));
  if (route !== null && !byName.has(route)) throw new GatewayError('GW_ERR_NO_ROUTE', `no route "${route}"`);
  const routes = store.violations(route ?? undefined).map((agg): CspRouteView => {
    const csp = byName.get(agg.route)?.security.csp ?? null;
    return { route: agg.route, report_only: csp?.reportOnly ?? null, learn: csp?.learn ?? false, policy: csp?.directives ?? null, violations: agg.violations, learned: agg.learned };
  });
  return { routes };
}
