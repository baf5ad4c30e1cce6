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

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The caller description used by `explain` and policy test files (same fields as identityToJson). */
export function identityFromJson(json: Record<string, unknown>): Identity {
  const subject = str(json.subject);
  if (!subject) throw new TypeError('identity needs a "subject" string');
  const method = str(json.method) ?? 'jwt';
  if (!['jwt', 'mtls', 'api_key', 'session'].includes(method)) throw new TypeError(`identity method "${method}" is not jwt|mtls|api_key|session`);
  const claims = json.claims !== null && typeof json.claims === 'object' && !Array.isArray(json.claims) ? (json.claims as Record<string, unknown>) : {};
  return Object.freeze({
    subject,
    provider: str(json.provider) ?? 'explain',
    issuer: str(json.issuer),
    method: method as AuthMethod,
    email: str(json.email),
    emailVerified: json.email_verified === true,
    groups: strings(json.groups),
    claims,
    spiffeId: str(json.spiffe_id),
    authTime: typeof json.auth_time === 'number' ? json.auth_time : undefined,
    amr: strings(json.amr),
    acr: str(json.acr),
    expiresAt: undefined,
  });
}
