// The closed set of posture findings and the NIST SP 800-207 tenets they count against. A finding id is a
// contract (scripts match on it): add ids, never rename them.

export type Severity = 'high' | 'medium' | 'low' | 'info';

export interface Finding {
  readonly id: FindingId;
  readonly severity: Severity;
  /** The NIST SP 800-207 tenets it counts against (from FINDINGS). */
  readonly tenets: readonly TenetId[];
  /** Config key path, e.g. routes[2].mode ('' for the whole document). */
  readonly path: string;
  readonly line?: number;
  readonly route?: string;
  readonly provider?: string;
  readonly message: string;
  readonly fix: string;
}

/** NIST SP 800-207 §2.1, the seven tenets of zero trust, in the standard's order. */
export const TENETS = [
  { id: 1, name: 'resources', text: 'All data sources and computing services are considered resources' },
  { id: 2, name: 'secure-communication', text: 'All communication is secured regardless of network location' },
  { id: 3, name: 'per-session-access', text: 'Access to individual enterprise resources is granted on a per-session basis' },
  { id: 4, name: 'dynamic-policy', text: 'Access to resources is determined by dynamic policy' },
  { id: 5, name: 'asset-posture', text: 'The enterprise monitors and measures the integrity and security posture of all assets' },
  { id: 6, name: 'strict-enforcement', text: 'All resource authentication and authorization are dynamic and strictly enforced before access is allowed' },
  { id: 7, name: 'telemetry', text: 'The enterprise collects information about assets, network and communications to improve its posture' },
] as const;

export type TenetId = (typeof TENETS)[number]['id'];

/** Every finding id, the tenets it counts against, and what it is about (for the README and --json consumers). */
export const FINDINGS = {
  'route-public': { tenets: [1, 6], about: 'a route that skips authentication (read-only methods)' },
  'route-public-writable': { tenets: [1, 6], about: 'a public route that accepts methods which change state' },
  'route-report-only': { tenets: [6], about: 'a route in report-only mode: denials are logged, never enforced' },
  'route-no-mfa': { tenets: [4], about: 'a route that lets a user in without multi-factor authentication' },
  'route-any-identity': { tenets: [3, 4], about: 'an allow rule that admits any verified identity (no least privilege)' },
  'route-no-rate-limit': { tenets: [6], about: 'a route without its own rate_limit' },
  'rate-limit-pre-auth-missing': { tenets: [6], about: 'no rate_limits.pre_auth (per-IP limit before authentication)' },
  'auth-failures-missing': { tenets: [6], about: 'no rate_limits.auth_failures (brute-force lockout)' },
  'cors-insecure-origin': { tenets: [2, 4], about: 'a CORS origin over plain http:// (high with credentials: the equivalent of a wildcard)' },
  'cross-origin-unprotected': { tenets: [2, 6], about: 'a cookie-session route with cross_origin.protect: false: other sites\' pages can ride the session' },
  'csp-report-only': { tenets: [6], about: 'a route whose Content-Security-Policy is report-only (the default): violations are reported, nothing is blocked' },
  'hsts-missing': { tenets: [2], about: 'Strict-Transport-Security turned off' },
  'hsts-weak': { tenets: [2], about: 'Strict-Transport-Security with a max_age below 180 days' },
  'session-ttl-long': { tenets: [3], about: 'session.ttl above 24 h (high) or 12 h (medium)' },
  'session-idle-long': { tenets: [3], about: 'session.idle_timeout above 1 h' },
  'jwt-token-age-unbounded': { tenets: [3], about: 'a JWT provider without max_token_age: token lifetime is whatever the issuer sets' },
  'jwt-token-age-long': { tenets: [3], about: 'a JWT provider whose max_token_age is above 12 h' },
  'jwt-clock-tolerance-large': { tenets: [3], about: 'a JWT provider with clock_tolerance above 60 s (high above 5 min)' },
  'jwt-audience-unbound': { tenets: [6], about: 'a JWT provider whose audience does not bind tokens to this gateway' },
  'jwt-audience-shared': { tenets: [3], about: 'two JWT providers of one issuer that accept the same audience' },
  'upstream-plaintext': { tenets: [2], about: 'a plain-HTTP upstream on a non-loopback address (no TLS, no mTLS)' },
  'upstream-plaintext-loopback': { tenets: [2], about: 'a plain-HTTP upstream on loopback (a sidecar: fine when the app listens on loopback only)' },
  'upstream-no-mtls': { tenets: [2, 5], about: 'an https upstream without a client certificate (the app cannot verify the gateway)' },
  'listen-plaintext': { tenets: [2], about: 'the main listener serves plain HTTP (only behind a TLS-terminating mesh)' },
  'trusted-proxies-any': { tenets: [6], about: 'trusted_proxies believes X-Forwarded-For from any address' },
  'identity-assertion-off': { tenets: [2], about: 'no signed X-ZT-Assertion: the upstream cannot verify identity headers' },
  'groups-filter-truncates': { tenets: [4, 6], about: 'identity_headers.groups_filter cuts the groups at max: the app may not see a group it denies on' },
  'device-posture-unused': { tenets: [4, 5], about: 'no rule uses device posture (devices.inventory)' },
  'admin-missing': { tenets: [7], about: 'no admin listener: no health probes, no /metrics' },
  'admin-exposed': { tenets: [2], about: 'the admin listener is not on loopback (high when /metrics is unauthenticated)' },
  'ext-authz-unguarded': { tenets: [2, 6], about: 'the ext_authz gRPC listener is off loopback and neither tls.client_ca nor a narrow trusted_proxies guards it: anyone who reaches it learns who may do what' },
  'ext-authz-plaintext': { tenets: [2], about: 'the ext_authz gRPC listener is off loopback without TLS: every checked request\'s credentials cross the network in clear' },
  'access-log-off': { tenets: [7], about: 'log.access is off' },
  'log-level-quiet': { tenets: [7], about: 'log.level drops info records' },
} as const satisfies Record<string, { tenets: readonly TenetId[]; about: string }>;

export type FindingId = keyof typeof FINDINGS;

export const SEVERITIES: readonly Severity[] = ['high', 'medium', 'low', 'info'];
