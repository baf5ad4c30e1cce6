// The closed vocabulary of decision reasons, shared by decisions, `explain`, policy tests and audit records.
export const REASONS = [
  'rule-matched',
  'deny-rule-matched',
  'no-allow-rule',
  'unauthenticated',
  'authenticated',
  'subject-unauthorized',
  'email-unverified',
  'email-unauthorized',
  'email-domain-unauthorized',
  'groups-unauthorized',
  'claims-unauthorized',
  'issuer-unauthorized',
  'provider-unauthorized',
  'method-unauthorized',
  'spiffe-id-unauthorized',
  'trust-domain-unauthorized',
  'source-ip-unauthorized',
  'http-method-unauthorized',
  'path-unauthorized',
  'time-unauthorized',
  'mfa-required',
  'device-unknown',
  'device-untrusted',
  'device-revoked',
  'service-caller-unauthorized',
  // Not rule outcomes: what metrics (zt_decisions_total) give as the reason for decisions without a policy.
  'public-route',
  'rate-limited',
  'step-up-required',
] as const;

export type Reason = (typeof REASONS)[number];
