// The config contract (DESIGN.md §3) as one zod schema. Unknown keys are errors everywhere (strictObject).
// config/schema.json is generated from this file (`npm run schema`); a test fails when they drift.
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration.ts';

const duration = z
  .string()
  .regex(DURATION_PATTERN, 'expected a duration such as 250ms, 30s, 5m, 8h')
  .transform(parseDuration)
  .meta({ description: 'A duration: <number><ms|s|m|h|d>, e.g. 30s' });

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+|\*):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:8443')
  .meta({ description: 'host:port to listen on; port 0 picks a free port' });

const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]);

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
  url: z.string().meta({ description: 'http(s)://host:port of the backend; no path, query or credentials' }),
  timeout: duration.prefault('30s').meta({ description: 'Time to wait for the response headers' }),
  connect_timeout: duration.prefault('10s'),
  body_timeout: duration.prefault('5m').meta({ description: 'Longest pause between body chunks' }),
  connections: z.number().int().min(1).max(10_000).default(128),
  preserve_host: z.boolean().default(false).meta({ description: "Send the client's Host instead of the upstream's" }),
  tls: upstreamTls.optional(),
});

const match = z.strictObject({
  host: oneOrMany(z.string().min(1)).optional().meta({ description: 'Exact host or *.example.com; any host when absent' }),
  path: z
    .string()
    .default('/')
    .meta({ description: 'Path prefix matched at segment boundaries; =/x for an exact path' }),
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'methods are upper-case tokens such as GET')).min(1).optional(),
});

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
  claims: z
    .strictObject({
      subject: z.string().default('sub'),
      email: z.string().default('email'),
      email_verified: z.string().default('email_verified'),
      groups: z.string().default('groups'),
    })
    .prefault({}),
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

const identityProvider = z.discriminatedUnion('type', [jwtProvider, mtlsProvider, apiKeyProvider]);

const headerName = z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name');

const routeIdentityHeaders = z.strictObject({
  user: headerName.optional(),
  email: headerName.optional(),
  groups: headerName.optional(),
  method: headerName.optional(),
  spiffe_id: headerName.optional(),
  assertion: z.boolean().optional().meta({ description: 'Send the signed assertion (default: identity_headers.assertion)' }),
  pass_token: z.boolean().default(false).meta({ description: 'Forward the client Authorization header upstream' }),
});

const route = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'route names are 1-64 of A-Z a-z 0-9 _ . -'),
  match: match.prefault({}),
  upstream,
  public: z.boolean().default(false).meta({ description: 'The only way to skip authentication; audited as public' }),
  authenticate: z.array(z.string().min(1)).min(1).optional().meta({ description: 'identity_providers tried in order' }),
  identity_headers: routeIdentityHeaders.prefault({}),
  websocket: z.boolean().default(true).meta({ description: 'Allow WebSocket upgrades on this route' }),
});

export const configSchema = z.strictObject({
  listen,
  admin: z.strictObject({ listen: hostPort }).optional(),
  trusted_proxies: z.array(z.string()).default([]).meta({ description: 'CIDRs whose X-Forwarded-* headers are believed' }),
  state: z.strictObject({ redis: z.string().url().optional() }).optional(),
  identity_providers: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), identityProvider).default({}),
  identity_headers: z
    .strictObject({
      prefix: z.string().regex(/^[A-Za-z][A-Za-z0-9-]*-$/, 'a header-name prefix ending in "-"').default('X-ZT-'),
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

export function configJsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
