// routes[]: match, upstream, authentication, identity headers, policy rules, CORS, security headers, validate
// (part of the config contract, DESIGN.md §3).
import { z } from 'zod';
import { groupPatternProblem, hostPatternProblem, IDENTITY_FIELD, routePathProblem, upstreamUrlProblem } from './checks.ts';
import { checked, duration, GRANT_NAME, headerName, oneOrMany, riskThreshold, str } from './schema-common.ts';
import { validateSchema } from './schema-validate.ts';

const upstreamTls = z.strictObject({
  ca: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  servername: z.string().min(1).optional(),
});

const upstreamUrl = checked(z.string(), upstreamUrlProblem);
const prefixPath = z.string().regex(/^\/([A-Za-z0-9._~!$&'()*+,;=:@-]+\/)*[A-Za-z0-9._~!$&'()*+,;=:@-]*$/, 'a path such as /app (segments, no trailing slash, no . or ..)');

/** Several endpoints: balancing, health, outlier ejection and retries (one-endpoint routes may use them too). */
const upstreamFleet = {
  endpoints: z.array(upstreamUrl).min(1).max(64).optional().meta({ description: 'Several http(s)://host:port backends of one scheme (instead of url)' }),
  balance: z.enum(['round_robin', 'least_request', 'random']).default('round_robin'),
  audience: z.string().min(1).optional().meta({ description: "The signed assertion's audience (default: the first endpoint's origin)" }),
  health: z
    .strictObject({
      path: z.string().regex(/^\/[\x21-\x7e]*$/, 'an absolute path such as /healthz'),
      interval: duration.prefault('5s'),
      timeout: duration.prefault('2s'),
      healthy_after: z.number().int().min(1).max(100).default(2),
      unhealthy_after: z.number().int().min(1).max(100).default(2),
    })
    .optional()
    .meta({ description: 'Active health checks (GET path on each endpoint; 2xx/3xx is healthy)' }),
  outlier: z
    .strictObject({
      consecutive_errors: z.number().int().min(1).max(1000).default(5),
      ejection: duration.prefault('30s'),
    })
    .optional()
    .meta({ description: 'Passive checks: this many consecutive connect failures/resets/502-504 eject the endpoint for `ejection`' }),
  retries: z
    .strictObject({
      attempts: z.number().int().min(1).max(10).meta({ description: 'Retries after the first attempt' }),
      on: z
        .array(z.union([z.enum(['connect_failure', 'reset', '502', '503', '504']), z.literal(502), z.literal(503), z.literal(504)]))
        .min(1)
        .default(['connect_failure', 'reset']),
      budget: z
        .strictObject({ percent: z.number().min(0).max(100).default(20), min_concurrency: z.number().int().min(0).default(3) })
        .prefault({}),
    })
    .optional()
    .meta({ description: 'Idempotent requests only, never after a request body byte or a response byte went through' }),
  strip_prefix: prefixPath.optional().meta({ description: "Removed from the forwarded path (segment boundary, within match.path); '' becomes /" }),
  rewrite_prefix: prefixPath.optional().meta({ description: 'Put in place of strip_prefix (or of match.path when strip_prefix is absent)' }),
};

export const upstream = z.strictObject({
  url: upstreamUrl.optional().meta({ description: 'http(s)://host:port of the backend; no path, query or credentials' }),
  ...upstreamFleet,
  timeout: duration.prefault('30s').meta({ description: 'Time to wait for the response headers' }),
  connect_timeout: duration.prefault('10s'),
  body_timeout: duration.prefault('5m').meta({ description: 'Longest pause between body chunks' }),
  connections: z.number().int().min(1).max(10_000).default(128),
  preserve_host: z.boolean().default(false).meta({ description: "Send the client's Host instead of the upstream's" }),
  http2: z.boolean().default(false).meta({ description: 'Speak HTTP/2 to the upstream: ALPN h2 on https://, h2c with prior knowledge on http:// (default HTTP/1.1)' }),
  tls: upstreamTls.optional(),
  case_insensitive: z.boolean().default(false).meta({
    description:
      'The app folds paths the Windows way (IIS, ASP.NET, case-insensitive Java routers): a path spelled so that it folds onto ' +
      'another route of this origin is refused, and so are a segment ending in . or a space, 8.3 short names (~1) and cookieless (S(x)) segments. Same on every route to this origin',
  }),
  allow_encoded_semicolon: z.boolean().default(false).meta({
    description: 'Forward %3B in paths (refused by default: a backend that decodes before cutting ;params reads /admin%3Bx as /admin)',
  }),
});

const headerMutation = z.strictObject({
  set: z.record(headerName, z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'a header value (no control characters)')).optional(),
  remove: z.array(headerName).optional(),
});

const match = z.strictObject({
  host: oneOrMany(checked(z.string().min(1), hostPatternProblem)).optional().meta({ description: 'Exact host or *.example.com; any host when absent' }),
  path: checked(z.string(), routePathProblem)
    .default('/')
    .meta({ description: 'Path prefix matched at segment boundaries; =/x for an exact path' }),
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'methods are upper-case tokens such as GET')).min(1).optional(),
});


/** Which groups the upstream header and the assertion carry (policy still sees every group). */
export const groupsFilter = z
  .strictObject({
    include: z
      .array(checked(z.string().min(1), groupPatternProblem))
      .min(1)
      .optional()
      .meta({ description: 'Groups passed on: a prefix, or /regex/ (/regex/i); all groups when absent' }),
    max: z.number().int().min(1).max(10_000).optional().meta({ description: 'At most this many (sorted); cut → <prefix>Groups-Truncated: true' }),
  })
  .meta({ description: 'Filters the groups the upstream header and the signed assertion get, sorted; policy still sees every group' });

const routeIdentityHeaders = z.strictObject({
  user: headerName.optional(),
  email: headerName.optional(),
  groups: headerName.optional(),
  method: headerName.optional(),
  spiffe_id: headerName.optional(),
  assertion: z.boolean().optional().meta({ description: 'Send the signed assertion (default: identity_headers.assertion)' }),
  pass_token: z.boolean().default(false).meta({ description: 'Forward the client Authorization header upstream' }),
  groups_filter: groupsFilter.optional().meta({ description: 'This route\'s groups filter (instead of identity_headers.groups_filter)' }),
});

const identityFieldRef = z.string().regex(IDENTITY_FIELD, 'an identity field: subject, email, groups or claims.<path>');

const claimMatcher = z.union([
  z.union([z.string(), z.number(), z.boolean()]),
  z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
  z.strictObject({ equals: z.union([z.string(), z.number(), z.boolean()]) }),
  z.strictObject({ one_of: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1) }),
  z.strictObject({ contains: z.union([z.string(), z.number(), z.boolean()]) }),
]);

/** A rule: every condition present must hold. A condition with a list means "any of". */
export const rule = z.strictObject({
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

export const authorize = z.strictObject({
  allow: z.array(rule).default([]),
  deny: z.array(rule).default([]),
});

export const rateLimit = z.strictObject({
  per: z.enum(['ip', 'subject', 'api_key', 'route']),
  limit: z.number().int().min(1).max(10_000_000),
  window: duration,
});

export const cors = z.strictObject({
  origins: z.array(z.string().regex(/^https?:\/\/[^/?#*]+$/, 'an exact origin such as https://app.example.com')).min(1),
  methods: z.array(z.string().regex(/^[A-Z]+$/)).default(['GET', 'HEAD', 'POST']),
  headers: z.array(z.string().regex(/^[A-Za-z0-9-]+$/)).default([]),
  expose_headers: z.array(z.string().regex(/^[A-Za-z0-9-]+$/)).default([]),
  credentials: z.boolean().default(false),
  max_age: duration.prefault('10m'),
});

/** Cross-site protection of cookie sessions (README "Cross-site protection"): on unless protect: false. */
export const crossOrigin = z.strictObject({
  protect: z.boolean().default(true).meta({ description: 'Refuse unsafe methods and WebSocket upgrades that ride the session cookie from another origin' }),
  allow: z
    .array(z.string().regex(/^https?:\/\/[^/?#*@\s]+$/, 'an exact origin such as https://app.example.com'))
    .default([])
    .meta({ description: 'Other origins whose pages may send such requests with the session cookie' }),
});

export const securityHeaders = z.strictObject({
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
        directives: z
          .record(z.string(), z.union([z.array(z.string()), z.literal(true)]))
          .optional()
          .meta({ description: 'Directives added to (or replacing) the default policy; a route\'s are merged over the top-level ones' }),
        report_only: z
          .boolean()
          .optional()
          .meta({ description: 'Default true: send Content-Security-Policy-Report-Only (reports go to the gateway); false enforces' }),
        learn: z
          .boolean()
          .optional()
          .meta({ description: "Hash the inline scripts and styles of this route's HTML pages (bounded) so `csp suggest` can allow them by hash" }),
      }),
    ])
    .optional(),
  frame_options: z.enum(['deny', 'sameorigin']).or(z.literal(false)).optional(),
  referrer_policy: z.string().or(z.literal(false)).optional(),
  permissions_policy: z.string().or(z.literal(false)).optional(),
  cross_origin_opener_policy: z.enum(['same-origin', 'same-origin-allow-popups', 'unsafe-none']).or(z.literal(false)).optional(),
  keep_upstream: z.array(z.string().regex(/^[A-Za-z0-9-]+$/)).optional().meta({ description: "Headers where the upstream's value wins" }),
});

export const route = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'route names are 1-64 of A-Z a-z 0-9 _ . -'),
  match: match.prefault({}),
  upstream,
  public: z.boolean().default(false).meta({ description: 'The only way to skip authentication; audited as public' }),
  authenticate: z.array(z.string().min(1)).min(1).optional().meta({ description: 'identity_providers tried in order' }),
  identity_headers: routeIdentityHeaders.prefault({}),
  websocket: z
    .union([
      z.boolean(),
      z.strictObject({
        max_lifetime: duration.optional().meta({ description: 'Close each WebSocket this long after its 101 (end reason `lifetime`)' }),
      }),
    ])
    .default(true)
    .meta({ description: 'Allow WebSocket upgrades on this route: true, false, or { max_lifetime: 8h } (enabled, with a lifetime)' }),
  authorize: authorize.optional().meta({ description: 'Deny rules first, then allow rules; nothing matches → 403' }),
  mode: z.enum(['enforce', 'report-only']).default('enforce'),
  rate_limit: rateLimit.optional(),
  cors: cors.optional(),
  cross_origin: crossOrigin.prefault({}),
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
  request_headers: headerMutation.optional().meta({ description: 'Headers set on / removed from the request sent upstream' }),
  response_headers: headerMutation.optional().meta({ description: 'Headers set on / removed from the response sent to the client' }),
});
