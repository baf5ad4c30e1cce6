// The access-state part of the assess stage: run on every request of a protected route, after
// authentication and before policy. Lookups in the local copy only; no I/O.
import { type Identity, GatewayError } from '../core/index.ts';
import type { Device } from '../authz/index.ts';
import type { AccessStore } from './access.ts';

/** The revocable id of a credential: a JWT's jti, or an API key's id. */
export function tokenId(identity: Identity): string | undefined {
  const c = identity.claims;
  const id = identity.method === 'api_key' ? c.key_id : c.jti;
  return typeof id === 'string' ? id : undefined;
}

const REVOKED_CHALLENGE = [['www-authenticate', 'Bearer realm="zt-gateway", error="invalid_token", error_description="token revoked"']] as const;

/**
 * Throws 503 when the state cannot be confirmed (unless the route allows the last known copy), 403 for a
 * suspended subject or a revoked device, 401 for a revoked token.
 */
export function assessAccess(access: AccessStore, route: { readonly onStateError: 'deny' | 'allow' }, identity: Identity, device: () => Device | undefined): void {
  if (route.onStateError === 'deny' && !access.fresh()) {
    throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the revocation state is unavailable');
  }
  if (access.suspension(identity.subject) !== undefined) throw new GatewayError('GW_ERR_SUSPENDED', 'this subject is suspended');
  const jti = tokenId(identity);
  if (jti !== undefined && access.tokenRevoked(jti)) {
    throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'this token has been revoked', { headers: REVOKED_CHALLENGE });
  }
  if (access.revokedDevices > 0) {
    const d = device();
    if (d !== undefined && access.deviceRevoked(d.id)) throw new GatewayError('GW_ERR_FORBIDDEN', 'this device has been revoked');
  }
}
