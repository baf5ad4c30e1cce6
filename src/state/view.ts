// GET /admin/v1/state and `zt-gateway admin state`: the access state as JSON (ISO times, no secrets).
import type { AccessStore } from './access.ts';
import { grantView } from './grants.ts';

const iso = (ms: number) => new Date(ms).toISOString();

function entries<V extends { at: number; by: string; reason?: string | undefined }>(
  m: ReadonlyMap<string, V>,
  key: string,
  extra: (v: V) => Record<string, unknown> = () => ({}),
): Array<Record<string, unknown>> {
  return [...m].map(([k, v]) => ({ [key]: k, at: iso(v.at), by: v.by, ...(v.reason ? { reason: v.reason } : {}), ...extra(v) }));
}

export function stateView(access: AccessStore): Record<string, unknown> {
  const now = access.now();
  const synced = access.syncedAt();
  return {
    store: { kind: access.kind, fresh: access.fresh(), synced_at: Number.isFinite(synced) && synced > 0 ? iso(synced) : undefined },
    suspended: entries(access.list('suspended'), 'subject'),
    revoked_tokens: entries(access.list('tokens'), 'jti', (v) => ({ until: iso(v.until) })),
    revoked_devices: entries(access.list('devices'), 'device'),
    session_revocations: entries(access.list('sessions'), 'subject'),
    grants: [...access.list('grants').values()].map((g) => grantView(g, now)),
    active_grants: access.activeGrantCount(),
  };
}
