// The config contract (DESIGN.md §3) as one zod schema. Unknown keys are errors everywhere (strictObject).
// config/schema.json is generated from this file (`npm run schema`); a test fails when they drift.
import { z } from 'zod';
import { cidrProblem, hostPatternProblem, identityPrefixProblem, routePathProblem, upstreamUrlProblem } from './checks.ts';
import { DURATION_PATTERN, parseDuration } from './duration.ts';
import { IDENTITY_FIELD } from '../authz/index.ts';
import { validateSchema } from '../validate/index.ts';

const duration = z
  .string()
  .regex(DURATION_PATTERN, 'expected a duration such as 250ms, 30s, 5m, 8h')
  .transform(parseDuration)
  .meta({ description: 'A duration: <number><ms|s|m|h|d>, e.g. 30s' });

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+|\*):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:8443')
  .meta({ description: 'host:port to listen on; port 0 picks a free port' });

const headerName = z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name');

const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]);

/** A string with a field-level check: invisible in the JSON Schema, reported with the other schema errors. */
const checked = (base: z.ZodString, problem: (value: string) => string | undefined) =>
  base.superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  });

const tls = z.strictObject({
  cert: z.string().min(1).meta({ description: 'PEM certificate chain file' }),
  key: z.string().min(1).meta({ description: 'PEM private key file' }),
  client_ca: z.string().min(1).optional().meta({ description: 'PEM CA bundle that client certificates must chain to' }),
  crl: z.string().min(1).optional().meta({ description: 'PEM CRL file: revoked client certificates fail the handshake check' }),
  client_auth: z.enum(['none', 'optional', 'require']).default('none'),
  min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
});

const limits = z.strictObject({
  max_header_bytes: z.number().int().min(1024).max(1_048_576).default(16_384),
  max_target_bytes: z.number().int().min(256).max(65_536).default(8192),
  request_timeout: duration.prefault('5m'),
  headers_timeout: duration.prefault('20s'),
  keep_alive_timeout: duration.prefault('5s'),
});

const listen = z
  .strictObject({
    address: hostPort,
    tls: tls.optional(),
    plaintext: z
      .boolean()
      .default(false)
      .meta({ description: 'Serve plain HTTP (only behind a TLS-terminating mesh). Requires that tls is absent.' }),
    redirect_http: hostPort.optional().meta({ description: 'Extra plain-HTTP listener that redirects to https' }),
    limits: limits.prefault({}),
  })
  .superRefine((v, ctx) => {
    if (!v.tls && !v.plaintext) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'listen.tls is required (or set plaintext: true explicitly)' });
    }
    if (v.tls && v.plaintext) {
      ctx.addIssue({ code: 'custom', path: ['plaintext'], message: 'plaintext: true cannot be combined with tls' });
    }
    if (v.redirect_http && !v.tls) {
      ctx.addIssue({ code: 'custom', path: ['redirect_http'], message: 'redirect_http needs listen.tls' });
    }
  });

const upstreamTls = z.strictObject({
  ca: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  servername: z.string().min(1).optional(),
});

const upstream = z.strictObject({
  url: checked(z.string(), upstreamUrlProblem).meta({ description: 'http(s)://host:port of the backend; no path, query or credentials' }),
  timeout: duration.prefault('30s').meta({ description: 'Time to wait for the response headers' }),
  connect_timeout: duration.prefault('10s'),
  body_timeout: duration.prefault('5m').meta({ description: 'Longest pause between body chunks' }),
  connections: z.number().int().min(1).max(10_000).default(128),
  preserve_host: z.boolean().default(false).meta({ description: "Send the client's Host instead of the upstream's" }),
  tls: upstreamTls.optional(),
});

const match = z.strictObject({
  host: oneOrMany(checked(z.string().min(1), hostPatternProblem)).optional().meta({ description: 'Exact host or *.example.com; any host when absent' }),
  path: checked(z.string(), routePathProblem)
    .default('/')
    .meta({ description: 'Path prefix matched at segment boundaries; =/x for an exact path' }),
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'methods are upper-case tokens such as GET')).min(1).optional(),
});

/** Which claims carry subject, email, email_verified and groups (e.g. groups: roles). */
const claimNames = z
  .strictObject({
    subject: z.string().default('sub'),
    email: z.string().default('email'),
    email_verified: z.string().default('email_verified'),
    groups: z.string().default('groups'),
  })
  .prefault({});

const JWT_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519', 'HS256', 'HS384', 'HS512'] as const;

const jwtProvider = z.strictObject({
  type: z.literal('jwt'),
  issuer: z.string().min(1).meta({ description: 'Expected iss; also the discovery base when jwks_uri is absent' }),
  audiences: z.array(z.string().min(1)).min(1).meta({ description: 'Accepted aud values (at least one must match)' }),
  algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).default(['ES256', 'RS256', 'EdDSA']),
  jwks_uri: z.string().optional(),
  secret: z.string().min(32).optional().meta({ description: 'Shared secret for HS* algorithms only (use ${env:…})' }),
  clock_tolerance: duration.prefault('30s'),
  max_token_age: duration.optional(),
  typ: z.string().min(1).optional().meta({ description: 'Required JWT typ header, e.g. at+jwt' }),
  trust_email: z.boolean().default(false).meta({ description: 'Treat the email claim as verified without email_verified' }),
  claims: claimNames,
  jwks: z
    .strictObject({
      timeout: duration.prefault('5s'),
      cooldown: duration.prefault('30s'),
      max_age: duration.prefault('10m'),
      ca: z.string().min(1).optional().meta({ description: 'PEM CA for the JWKS/discovery HTTPS endpoint' }),
    })
    .prefault({}),
  cache_entries: z.number().int().min(0).max(1_000_000).default(10_000),
});

const mtlsProvider = z.strictObject({
  type: z.literal('mtls'),
  trust_domain: z.string().regex(/^[a-z0-9._-]+$/).optional().meta({ description: 'Required SPIFFE trust domain' }),
  require_spiffe: z.boolean().optional().meta({ description: 'Refuse certificates without a SPIFFE ID (default: when trust_domain is set)' }),
});

const apiKeyProvider = z.strictObject({
  type: z.literal('api_key'),
  keys_file: z.string().min(1).meta({ description: 'YAML file of { id, hash (sha256 hex), subject, groups, expires }' }),
  header: z.string().regex(/^[A-Za-z0-9-]+$/).optional().meta({ description: 'Also accept the key in this header' }),
});

const oidcProvider = z.strictObject({
  type: z.literal('oidc'),
  issuer: z.string().min(1).meta({ description: 'OpenID Provider issuer URL (discovery at /.well-known/openid-configuration)' }),
  client_id: z.string().min(1),
  client_secret: z.string().min(1).optional().meta({ description: 'Use ${env:…}; or private_key_jwt' }),
  private_key_jwt: z
    .strictObject({ key: z.string().min(1).meta({ description: 'PEM private key file' }), kid: z.string().optional() })
    .optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).default(['openid', 'email', 'profile']),
  claims: claimNames,
  ca: z.string().min(1).optional().meta({ description: 'PEM CA for the IdP HTTPS endpoints' }),
  timeout: duration.prefault('5s'),
});

const identityProvider = z.discriminatedUnion('type', [jwtProvider, mtlsProvider, apiKeyProvider, oidcProvider]);


const routeIdentityHeaders = z.strictObject({
  user: headerName.optional(),
  email: headerName.optional(),
  groups: headerName.optional(),
  method: headerName.optional(),
  spiffe_id: headerName.optional(),
  assertion: z.boolean().optional().meta({ description: 'Send the signed assertion (default: identity_headers.assertion)' }),
  pass_token: z.boolean().default(false).meta({ description: 'Forward the client Authorization header upstream' }),
});

const str = z.string().min(1);
const GRANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Just-in-time grants: requested with POST /.zt/grants, approved by a member of `approvers`, active for a TTL. */
const grant = z.strictObject({
  approvers: z.array(str).min(1).meta({ description: 'Groups whose members may approve (never the requester)' }),
  max_duration: duration.meta({ description: 'Longest duration a request may ask for' }),
  request_ttl: duration.prefault('1h').meta({ description: 'An unapproved request lapses after this' }),
  authenticate: z.array(str).min(1).optional().meta({ description: 'identity_providers that authenticate requests and approvals on /.zt/grants (default: all)' }),
  description: z.string().max(500).optional(),
});

const identityFieldRef = z.string().regex(IDENTITY_FIELD, 'an identity field: subject, email, groups or claims.<path>');

const claimMatcher = z.union([
  z.union([z.string(), z.number(), z.boolean()]),
  z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
  z.strictObject({ equals: z.union([z.string(), z.number(), z.boolean()]) }),
  z.strictObject({ one_of: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1) }),
  z.strictObject({ contains: z.union([z.string(), z.number(), z.boolean()]) }),
]);

const riskThreshold = z.number().min(0).max(1);

/** A rule: every condition present must hold. A condition with a list means "any of". */
const rule = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional().meta({ description: 'Shown in decisions and audit' }),
  authenticated: z.boolean().optional(),
  subject: oneOrMany(str).optional(),
  email: oneOrMany(str).optional().meta({ description: 'Verified email addresses only' }),
  email_domain: oneOrMany(str).optional().meta({ description: 'Exact domain after the last @, verified emails only' }),
  groups: oneOrMany(str).optional().meta({ description: 'Any of these groups' }),
  all_groups: z.array(str).min(1).optional().meta({ description: 'All of these groups' }),
  claims: z.record(z.string().min(1), claimMatcher).optional().meta({ description: 'Claim path (a.b.c) → value, list (one of), {equals|one_of|contains}' }),
  issuer: oneOrMany(str).optional(),
  provider: oneOrMany(str).optional(),
  method: oneOrMany(z.enum(['jwt', 'mtls', 'api_key', 'session'])).optional(),
  spiffe_id: oneOrMany(str).optional().meta({ description: 'Exact SPIFFE ID, or a prefix ending in /*' }),
  trust_domain: oneOrMany(str).optional(),
  source_ip: oneOrMany(str).optional().meta({ description: 'CIDRs matched against the trusted client IP' }),
  http_methods: oneOrMany(z.string().regex(/^[A-Z]+$/)).optional(),
  paths: oneOrMany(str).optional().meta({ description: 'Sub-paths of the route: prefix at segment boundaries, =/x exact' }),
  time: z
    .strictObject({
      days: oneOrMany(str).optional().meta({ description: 'mon-fri, or a list such as [mon, wed, sat-sun]' }),
      hours: z.string().regex(/^\d{2}:\d{2}-\d{2}:\d{2}$/, 'hours look like 08:00-19:00').optional(),
      tz: z.string().default('UTC').meta({ description: 'IANA time zone, e.g. Europe/Berlin' }),
    })
    .optional(),
  mfa: z.literal(true).optional().meta({ description: 'amr contains an MFA method or acr is in authz.mfa.acr' }),
  device: z.enum(['known', 'trusted']).optional().meta({ description: 'Device in devices.inventory, not revoked (and trusted)' }),
  service_callers: oneOrMany(str).optional().meta({ description: 'SPIFFE IDs (or prefixes ending in /*) allowed to call' }),
  grant: oneOrMany(z.string().regex(GRANT_NAME)).optional().meta({ description: 'An approved, unexpired just-in-time grant (a name under grants)' }),
  params: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'a segment name of the route path'), identityFieldRef)
    .optional()
    .meta({ description: 'Named path segment → identity field it must equal (or be one of): subject, email, groups, claims.<path>' }),
  query_params: z
    .record(z.string().min(1), identityFieldRef)
    .optional()
    .meta({ description: 'Query parameter → identity field; must be present, every value of a repeated parameter must match' }),
  risk_above: riskThreshold.optional().meta({ description: 'Deny rules only: holds when the request risk score is above this' }),
});

const authorize = z.strictObject({
  allow: z.array(rule).default([]),
  deny: z.array(rule).default([]),
});

const rateLimit = z.strictObject({
  per: z.enum(['ip', 'subject', 'api_key', 'route']),
  limit: z.number().int().min(1).max(10_000_000),
  window: duration,
});

const cors = z.strictObject({
  origins: z.array(z.string().regex(/^https?:\/\/[^/?#*]+$/, 'an exact origin such as https://app.example.com')).min(1),
  methods: z.array(z.string().regex(/^[A-Z]+$/)).default(['GET', 'HEAD', 'POST']),
  headers: z.array(z.string().regex(/^[A-Za-z0-9-]+$/)).default([]),
  expose_headers: z.array(z.string().regex(/^[A-Za-z0-9-]+$/)).default([]),
  credentials: z.boolean().default(false),
  max_age: duration.prefault('10m'),
});

const securityHeaders = z.strictObject({
  hsts: z
    .union([
      z.literal(false),
      z.strictObject({
        max_age: duration.prefault('365d'),
        include_subdomains: z.boolean().default(true),
        preload: z.boolean().default(false),
      }),
    ])
    .optional(),
  csp: z
    .union([
      z.literal(false),
      z.strictObject({
        directives: z.record(z.string(), z.union([z.array(z.string()), z.literal(true)])).optional(),
        report_only: z.boolean().default(false),
      }),
    ])
    .optional(),
  frame_options: z.enum(['deny', 'sameorigin']).or(z.literal(false)).optional(),
  referrer_policy: z.string().or(z.literal(false)).optional(),
  permissions_policy: z.string().or(z.literal(false)).optional(),
  cross_origin_opener_policy: z.enum(['same-origin', 'same-origin-allow-popups', 'unsafe-none']).or(z.literal(false)).optional(),
  keep_upstream: z.array(z.string().regex(/^[A-Za-z0-9-]+$/)).optional().meta({ description: "Headers where the upstream's value wins" }),
});

const route = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'route names are 1-64 of A-Z a-z 0-9 _ . -'),
  match: match.prefault({}),
  upstream,
  public: z.boolean().default(false).meta({ description: 'The only way to skip authentication; audited as public' }),
  authenticate: z.array(z.string().min(1)).min(1).optional().meta({ description: 'identity_providers tried in order' }),
  identity_headers: routeIdentityHeaders.prefault({}),
  websocket: z.boolean().default(true).meta({ description: 'Allow WebSocket upgrades on this route' }),
  authorize: authorize.optional().meta({ description: 'Deny rules first, then allow rules; nothing matches → 403' }),
  mode: z.enum(['enforce', 'report-only']).default('enforce'),
  rate_limit: rateLimit.optional(),
  cors: cors.optional(),
  step_up: z
    .strictObject({
      acr: z.string().min(1).optional().meta({ description: 'acr_values to request; the login (session or token) must carry it (or MFA amr)' }),
      max_age: duration.optional().meta({ description: 'Re-authenticate when the login is older than this' }),
      when: z
        .strictObject({ risk_above: riskThreshold })
        .optional()
        .meta({ description: 'Step up only when the risk score is above this (then a fresh MFA login, or 401 {challenge: mfa} for API calls)' }),
    })
    .optional()
    .meta({ description: 'Every caller must meet this: browser sessions are sent back to the IdP, others get 401 insufficient_user_authentication' }),
  security_headers: securityHeaders.optional().meta({ description: 'Per-route override of the top-level security_headers' }),
  on_state_error: z
    .enum(['deny', 'allow'])
    .default('deny')
    .meta({ description: 'When the suspension/revocation state cannot be confirmed: deny (503) or allow with the last known copy' }),
  validate: validateSchema.optional().meta({ description: 'Validate requests (OpenAPI file or inline JSON Schemas) before forwarding' }),
});

const weight = z.number().min(0).max(1);

const riskConfig = z.strictObject({
  all_routes: z.boolean().default(false).meta({ description: 'Score (and learn from) every authenticated route, not only those with risk_above' }),
  geoip_db: oneOrMany(z.string().min(1)).optional().meta({ description: 'MaxMind-format .mmdb file(s) (e.g. an IPv4 and an IPv6 one); read at load, never a network lookup' }),
  weights: z
    .strictObject({
      new_ip: weight.default(0.3),
      new_country: weight.default(0.3),
      impossible_travel: weight.default(0.5),
      unknown_device: weight.default(0.2),
      auth_failures: weight.default(0.3),
      unusual_hours: weight.default(0.2),
      high_volume: weight.default(0.3),
    })
    .prefault({}),
  travel_kmh: z.number().min(1).default(1000).meta({ description: 'Faster than this between two located requests is impossible travel' }),
  auth_failures: z
    .strictObject({ count: z.number().int().min(1).default(3), window: duration.prefault('15m') })
    .prefault({})
    .meta({ description: 'This many failed authentications from the client address within window raise the score' }),
  volume_factor: z.number().min(1).default(5).meta({ description: "Requests in the current minute above this many times the subject's usual rate" }),
  volume_min: z.number().int().min(1).default(10).meta({ description: 'The volume signal needs at least this many requests in the minute' }),
  learning: z
    .strictObject({ requests: z.number().int().min(0).default(20), period: duration.prefault('1h') })
    .prefault({})
    .meta({ description: 'A profile with fewer requests or younger than period is still learning: novelty signals stay off' }),
  decay: duration.prefault('30d').meta({ description: 'Profile entries unseen for this long are forgotten; hour counts halve every decay' }),
  max_entries: z.number().int().min(1).max(256).default(16).meta({ description: 'Per subject: most recent IPs, countries and devices kept' }),
  max_subjects: z.number().int().min(1).max(10_000_000).default(50_000).meta({ description: 'Profiles kept in memory (least recently seen dropped)' }),
  reauth_window: duration.prefault('5m').meta({ description: 'A risk step-up needs a login (with the acr) no older than this (or step_up.max_age)' }),
});

export const configSchema = z.strictObject({
  listen,
  admin: z
    .strictObject({
      listen: hostPort,
      token_hash: z
        .string()
        .regex(/^[0-9a-f]{64}$/, 'the lower-case hex SHA-256 of the admin token')
        .optional()
        .meta({ description: 'SHA-256 (hex) of the admin API bearer token; no token_hash and no tls.client_ca: the admin API is off' }),
      tls: z
        .strictObject({
          cert: z.string().min(1),
          key: z.string().min(1),
          client_ca: z.string().min(1).optional().meta({ description: 'Client certificates chaining to this CA are admins (mTLS)' }),
        })
        .optional()
        .meta({ description: 'Serve the admin listener over HTTPS (and mTLS with client_ca)' }),
    })
    .optional(),
  trusted_proxies: z.array(checked(z.string(), cidrProblem)).default([]).meta({ description: 'CIDRs whose X-Forwarded-* headers are believed' }),
  state: z
    .strictObject({
      redis: z.string().url().optional().meta({ description: 'redis:// or rediss:// URL of the shared-state Redis' }),
      max_staleness: duration
        .prefault('3s')
        .meta({ description: 'With redis: how long the local copy of suspensions/revocations/grants may go unconfirmed before protected routes fail closed' }),
      sentinel: z
        .strictObject({
          name: z.string().min(1).meta({ description: 'Master group name the sentinels monitor' }),
          nodes: z
            .array(z.string().regex(/^([A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\]):\d{1,5}$/, 'expected host:port'))
            .min(1)
            .meta({ description: 'Sentinel addresses (host:port)' }),
          password: z.string().min(1).optional().meta({ description: 'Password of the Redis master (use ${env:…})' }),
          sentinel_password: z.string().min(1).optional(),
          db: z.number().int().min(0).max(15).default(0),
        })
        .optional()
        .meta({ description: 'Redis behind Sentinel (ioredis follows failovers); instead of redis' }),
    })
    .superRefine((v, ctx) => {
      if (v.redis !== undefined && v.sentinel !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['sentinel'], message: 'use state.redis or state.sentinel, not both' });
      }
    })
    .optional(),
  grants: z.record(z.string().regex(GRANT_NAME), grant).default({}).meta({ description: 'Just-in-time access grants by name' }),
  identity_providers: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), identityProvider).default({}),
  session: z
    .strictObject({
      cookie_name: z.string().regex(/^__Host-[A-Za-z0-9_-]+$/, 'session cookies use the __Host- prefix').default('__Host-zt'),
      secret: z.string().min(32).optional().meta({ description: 'At least 32 characters; use ${env:…}' }),
      old_secrets: z.array(z.string().min(32)).default([]).meta({ description: 'Previous secrets still accepted for reading' }),
      ttl: duration.prefault('8h'),
      idle_timeout: duration.prefault('30m'),
    })
    .optional(),
  identity_headers: z
    .strictObject({
      prefix: checked(z.string().regex(/^[A-Za-z][A-Za-z0-9-]*-$/, 'a header-name prefix ending in "-"'), identityPrefixProblem).default('X-ZT-'),
      assertion: z.boolean().default(true).meta({ description: 'Send X-ZT-Assertion, a signed ES256 JWT' }),
      assertion_key: z.string().min(1).optional().meta({ description: 'PEM EC P-256 private key; generated at start when absent' }),
      assertion_ttl: duration.prefault('30s'),
      issuer: z.string().min(1).default('zt-gateway').meta({ description: 'iss of the assertion' }),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      access: z.boolean().default(true),
      audit: z.string().min(1).default('stdout').meta({ description: 'stdout, or a file path for decision records' }),
      audit_chain: z.boolean().default(false).meta({ description: 'Hash-chain audit records (seq, prev); needs log.audit to be a file' }),
    })
    .prefault({}),
  rate_limits: z
    .strictObject({
      pre_auth: rateLimit.optional().meta({ description: 'Before authentication; per must be ip' }),
      auth_failures: z
        .strictObject({ limit: z.number().int().min(1).default(10), window: duration.prefault('5m'), block: duration.prefault('15m') })
        .optional()
        .meta({ description: 'Brute-force lockout: after limit failures per IP or subject in window, 429 for block' }),
    })
    .prefault({}),
  security_headers: securityHeaders.prefault({}),
  authz: z
    .strictObject({
      mfa: z
        .strictObject({
          amr: z.array(z.string()).default(['mfa', 'otp', 'hwk', 'swk', 'sms', 'fpt', 'face', 'iris', 'retina', 'vbm']),
          acr: z.array(z.string()).default([]),
        })
        .prefault({}),
    })
    .prefault({}),
  devices: z
    .strictObject({
      inventory: z.string().min(1).meta({ description: 'YAML: devices: [{ id, cert_sha256?, owner?, trusted, revoked }]' }),
      header: headerName.optional().meta({ description: 'Device id header, believed only from trusted_proxies' }),
    })
    .optional(),
  risk: riskConfig.optional().meta({ description: 'Risk score per request (src/risk): signals, weights, behaviour profiles' }),
  tracing: z
    .strictObject({
      propagate: z
        .boolean()
        .default(false)
        .meta({ description: 'Validate W3C traceparent/tracestate, forward valid ones, drop invalid ones, log the trace id' }),
    })
    .prefault({}),
  shutdown: z.strictObject({ drain_timeout: duration.prefault('30s') }).prefault({}),
  reload: z.strictObject({ watch: z.boolean().default(true) }).prefault({}),
  routes: z.array(route).default([]),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type UpstreamConfig = RouteConfig['upstream'];
export type IdentityProviderConfig = Config['identity_providers'][string];
export type SessionConfig = NonNullable<Config['session']>;
export type RedisSentinelConfig = NonNullable<NonNullable<Config['state']>['sentinel']>;
export type OidcProviderConfig = z.output<typeof oidcProvider>;
export type RuleConfig = z.output<typeof rule>;
export type AuthorizeConfig = z.output<typeof authorize>;
export type RateLimitConfig = z.output<typeof rateLimit>;
export type CorsConfig = z.output<typeof cors>;
export type SecurityHeadersConfig = z.output<typeof securityHeaders>;
export type GrantConfig = z.output<typeof grant>;
export type RiskConfig = z.output<typeof riskConfig>;

export function configJsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
