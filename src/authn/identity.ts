// The one identity shape every later stage reads (policy, headers, assertion, audit), whatever proved it.

export type AuthMethod = 'jwt' | 'mtls' | 'api_key' | 'session';

export interface Identity {
  readonly subject: string;
  /** Name of the identity provider in config that verified this identity. */
  readonly provider: string;
  readonly issuer: string | undefined;
  readonly method: AuthMethod;
  readonly email: string | undefined;
  readonly emailVerified: boolean;
  readonly groups: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
  readonly spiffeId: string | undefined;
  /** Seconds since the epoch. */
  readonly authTime: number | undefined;
  readonly amr: readonly string[];
  readonly acr: string | undefined;
  /** Seconds since the epoch; the identity must not be used after it. */
  readonly expiresAt: number | undefined;
}

/** The JSON form used by `explain`, policy tests and /.zt/userinfo (DESIGN.md §3). */
export function identityToJson(id: Identity): Record<string, unknown> {
  return {
    subject: id.subject,
    provider: id.provider,
    issuer: id.issuer,
    method: id.method,
    email: id.email,
    email_verified: id.emailVerified,
    groups: id.groups,
    spiffe_id: id.spiffeId,
    auth_time: id.authTime,
    amr: id.amr,
    acr: id.acr,
    claims: id.claims,
  };
}
