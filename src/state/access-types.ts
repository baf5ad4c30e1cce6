// The records of the access state (suspensions, revocations, just-in-time grants), as stored and as listed
// by GET /admin/v1/state. Times are milliseconds since the epoch.

export interface Suspension {
  readonly at: number;
  readonly by: string;
  readonly reason?: string | undefined;
}

export interface TokenRevocation {
  readonly at: number;
  readonly by: string;
  /** Kept until then (longer than any token the gateway accepts lives), then forgotten. */
  readonly until: number;
  readonly reason?: string | undefined;
}

export type DeviceRevocation = Suspension;
export type SessionRevocation = Suspension;

export interface Grant {
  readonly id: string;
  readonly grant: string;
  readonly subject: string;
  /** The identity provider that verified the requester: the grant applies to that identity only. */
  readonly provider: string;
  readonly justification: string;
  readonly durationMs: number;
  readonly status: 'pending' | 'approved' | 'revoked' | 'denied';
  readonly requestedAt: number;
  /** A pending request lapses at this time. */
  readonly requestExpiresAt: number;
  readonly approvedAt?: number | undefined;
  readonly approvedBy?: string | undefined;
  /** Set on approval: the grant is active until then. */
  readonly expiresAt?: number | undefined;
  readonly revokedAt?: number | undefined;
  readonly revokedBy?: string | undefined;
  /** Set when an approver denied the request (it never becomes active). */
  readonly deniedAt?: number | undefined;
  readonly deniedBy?: string | undefined;
}

/** The five collections, one Redis hash each. */
export interface Collections {
  suspended: Map<string, Suspension>;
  tokens: Map<string, TokenRevocation>;
  devices: Map<string, DeviceRevocation>;
  sessions: Map<string, SessionRevocation>;
  grants: Map<string, Grant>;
}

export type Kind = keyof Collections;
export const KINDS: readonly Kind[] = ['suspended', 'tokens', 'devices', 'sessions', 'grants'];

export type GrantState = 'pending' | 'active' | 'expired' | 'lapsed' | 'revoked' | 'denied';

/** What a grant is now: approval and expiry are judged against the clock, never stored. */
export function grantState(g: Grant, nowMs: number): GrantState {
  if (g.status === 'revoked') return 'revoked';
  if (g.status === 'denied') return 'denied';
  if (g.status === 'approved') return g.expiresAt !== undefined && nowMs < g.expiresAt ? 'active' : 'expired';
  return nowMs < g.requestExpiresAt ? 'pending' : 'lapsed';
}

/** When a record may be forgotten (ended grants stay listed for a day, for the audit trail). */
export const ENDED_GRANT_RETENTION_MS = 24 * 3_600_000;
export const TOKEN_REVOCATION_TTL_MS = 30 * 86_400_000;

export function grantEnd(g: Grant): number {
  if (g.status === 'revoked') return g.revokedAt ?? g.requestedAt;
  if (g.status === 'denied') return g.deniedAt ?? g.requestedAt;
  if (g.status === 'approved') return g.expiresAt ?? g.requestedAt;
  return g.requestExpiresAt;
}
