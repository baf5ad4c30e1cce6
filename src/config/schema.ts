// The config contract (DESIGN.md §3) as one zod schema. Unknown keys are errors everywhere (strictObject).
// config/schema.json is generated from this file (`npm run schema`); a test fails when they drift.
import { z } from 'zod';
import { cidrProblem, hostPatternProblem, identityPrefixProblem } from './checks.ts';
import { checked, duration, GRANT_NAME, headerName, hostPort, oneOrMany, str } from './schema-common.ts';
import { identityProvider, type githubProvider, type oidcProvider } from './schema-providers.ts';
import { authorize, cors, groupsFilter, rateLimit, route, rule, securityHeaders } from './schema-route.ts';
import { extAuthz } from './schema-ext-authz.ts';
import { login } from './schema-login.ts';

const tls = z.strictObject({
  cert: z.string().min(1).meta({ description: 'PEM certificate chain file' }),
  key: z.string().min(1).meta({ description: 'PEM private key file' }),
  client_ca: z.string().min(1).optional().meta({ description: 'PEM CA bundle that client certificates must chain to' }),
  crl: z.string().min(1).optional().meta({ description: 'PEM CRL file: revoked client certificates fail the handshake check' }),
  client_auth: z.enum(['none', 'optional', 'require']).default('none'),
  min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  certificates: z
    .array(
      z.strictObject({
        hosts: z.array(checked(z.string(), hostPatternProblem)).min(1).meta({ description: 'SNI names this certificate serves: exact names or *.example.com (one label)' }),
        cert: z.string().min(1).meta({ description: 'PEM certificate chain file' }),
        key: z.string().min(1).meta({ description: 'PEM private key file' }),
      }),
    )
    .optional()
    .meta({ description: 'More certificates chosen by SNI; cert and key above stay the default for a missing or unknown name' }),
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
    http2: z.boolean().optional().meta({ description: 'Offer HTTP/2 (ALPN h2, http/1.1 fallback) on the TLS listener; default true with TLS' }),
    h2c: z.boolean().default(false).meta({ description: 'Plain listener only: also accept HTTP/2 with prior knowledge (h2c); HTTP/1.1 stays' }),
    public_urls: z
      .array(z.string().regex(/^https?:\/\/[^/?#@\s]+\/?$/, 'a URL such as https://crm.example.com:8444 (scheme, host and optional port only)'))
      .optional()
      .meta({ description: 'The URLs clients use, keyed by host: their scheme and port make login redirect URIs and the origin of cross-site checks; when set, only these hosts may start a login' }),
  })
  .superRefine((v, ctx) => {
    if (!v.tls && !v.plaintext) {
      ctx.addIssue({ code: 'custom', params: { code: 'CFG_MISSING_KEY' }, path: ['tls'], message: 'listen.tls is required (or set plaintext: true explicitly)' });
    }
    if (v.tls && v.plaintext) {
      ctx.addIssue({ code: 'custom', params: { code: 'CFG_CONFLICT' }, path: ['plaintext'], message: 'plaintext: true cannot be combined with tls' });
    }
    if (v.h2c && v.tls) {
      ctx.addIssue({ code: 'custom', params: { code: 'CFG_CONFLICT' }, path: ['h2c'], message: 'h2c is for a plain listener; a TLS listener offers h2 through ALPN (listen.http2)' });
    }
    if (v.http2 === true && !v.tls) {
      ctx.addIssue({ code: 'custom', params: { code: 'CFG_CONFLICT' }, path: ['http2'], message: 'http2 needs listen.tls (use h2c: true for HTTP/2 with prior knowledge on a plain listener)' });
    }
    if (v.redirect_http && !v.tls) {
      ctx.addIssue({ code: 'custom', params: { code: 'CFG_CONFLICT' }, path: ['redirect_http'], message: 'redirect_http needs listen.tls' });
    }
  });

/** Just-in-time grants: requested with POST /.zt/grants, approved by a member of `approvers`, active for a TTL. */
const grant = z.strictObject({
  approvers: z.array(str).min(1).meta({ description: 'Groups whose members may approve (never the requester)' }),
  max_duration: duration.meta({ description: 'Longest duration a request may ask for' }),
  request_ttl: duration.prefault('1h').meta({ description: 'An unapproved request lapses after this' }),
  authenticate: z.array(str).min(1).optional().meta({ description: 'identity_providers that authenticate requests and approvals on /.zt/grants (default: all)' }),
  description: z.string().max(500).optional(),
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
      metrics: z
        .enum(['authenticated', 'public'])
        .optional()
        .meta({
          description:
            '/metrics for admins only (the admin token or a client certificate) or for anyone who reaches the listener; default: authenticated when token_hash or tls.client_ca is set. /healthz and /readyz stay open',
        }),
    })
    .optional(),
  trusted_proxies: z.array(checked(z.string(), cidrProblem)).default([]).meta({ description: 'CIDRs whose X-Forwarded-* headers are believed' }),
  ext_authz: extAuthz.optional(),
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
        ctx.addIssue({ code: 'custom', params: { code: 'CFG_CONFLICT' }, path: ['sentinel'], message: 'use state.redis or state.sentinel, not both' });
      }
    })
    .optional(),
  grants: z.record(z.string().regex(GRANT_NAME), grant).default({}).meta({ description: 'Just-in-time access grants by name' }),
  identity_providers: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), identityProvider).default({}),
  login: login.optional(),
  session: z
    .strictObject({
      cookie_name: z.string().regex(/^__Host-[A-Za-z0-9_-]+$/, 'session cookies use the __Host- prefix').default('__Host-zt'),
      secret: z.string().min(32).optional().meta({ description: 'At least 32 characters; use ${env:…}' }),
      old_secrets: z.array(z.string().min(32)).default([]).meta({ description: 'Previous secrets still accepted for reading' }),
      ttl: duration.prefault('8h'),
      idle_timeout: duration.prefault('30m'),
      keep_claims: z
        .array(z.string().min(1))
        .default([])
        .meta({ description: 'IdP claims sessions keep besides those the config reads (rules, claim mappings, identity headers, assertion)' }),
    })
    .optional(),
  identity_headers: z
    .strictObject({
      prefix: checked(z.string().regex(/^[A-Za-z][A-Za-z0-9-]*-$/, 'a header-name prefix ending in "-"'), identityPrefixProblem).default('X-ZT-'),
      assertion: z.boolean().default(true).meta({ description: 'Send X-ZT-Assertion, a signed ES256 JWT' }),
      assertion_key: z.string().min(1).optional().meta({ description: 'PEM EC P-256 private key; generated at start when absent' }),
      assertion_ttl: duration.prefault('30s'),
      issuer: z.string().min(1).default('zt-gateway').meta({ description: 'iss of the assertion' }),
      groups_filter: groupsFilter.optional(),
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
  error_pages: z
    .strictObject({
      dir: z.string().min(1).meta({ description: 'Directory (relative to the config file) of <status>.html templates and the required default.html; placeholders {{status}} {{title}} {{detail}} {{request_id}} {{time}} {{login_url}} {{logout_url}}, always HTML-escaped' }),
    })
    .optional()
    .meta({ description: 'HTML pages for browser navigations that are refused (built-in pages when absent)' }),
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
      otlp: z
        .strictObject({
          endpoint: z
            .url()
            .refine((u) => /^https?:\/\//i.test(u), 'must be an http:// or https:// URL')
            .meta({ description: 'OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces (JSON encoding)' }),
          headers: z.record(z.string(), z.string()).default({}).meta({ description: 'Headers sent with every export (e.g. an API key)' }),
        })
        .optional()
        .meta({ description: 'Export spans (one server span per request, child spans for upstream, JWKS, IdP, Redis); absent: no span is made' }),
      sample_ratio: z
        .number()
        .min(0)
        .max(1)
        .default(1)
        .meta({ description: 'Share of new traces recorded (ParentBased(TraceIdRatioBased)); a trusted parent decides for its own trace' }),
      include_subject: z
        .boolean()
        .default(false)
        .meta({ description: 'Opt-in: put the authenticated subject (enduser.id) on the server span' }),
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
export type GithubProviderConfig = z.output<typeof githubProvider>;
export type RuleConfig = z.output<typeof rule>;
export type GroupsFilterConfig = z.output<typeof groupsFilter>;
export type AuthorizeConfig = z.output<typeof authorize>;
export type RateLimitConfig = z.output<typeof rateLimit>;
export type CorsConfig = z.output<typeof cors>;
export type SecurityHeadersConfig = z.output<typeof securityHeaders>;
export type GrantConfig = z.output<typeof grant>;
export type RiskConfig = z.output<typeof riskConfig>;
export type ExtAuthzConfig = z.output<typeof extAuthz>;

export function configJsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
