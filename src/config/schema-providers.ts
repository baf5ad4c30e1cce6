// identity_providers: jwt, mtls, api_key, oidc (part of the config contract, DESIGN.md §3).
import { z } from 'zod';
import { duration } from './schema-common.ts';

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
const segmentsOk = (segs: readonly string[]) => segs.every((s) => s !== '' && !FORBIDDEN.has(s));

/**
 * One claim source: a string (the top-level claim of that exact name when the token has one, else a dotted
 * path such as realm_access.roles) or { path: [resource_access, my.client, roles] } (segments may hold dots).
 */
const claimSource = z.union([
  z.string().min(1).refine((s) => segmentsOk(s.split('.')), { message: 'empty or forbidden (__proto__, constructor, prototype) path segment' }),
  z.strictObject({
    path: z.array(z.string().min(1)).min(1).max(16).refine(segmentsOk, { message: 'forbidden path segment (__proto__, constructor, prototype)' }),
  }),
]);
/** One source, or several (groups: merged and de-duplicated in order; the others: the first that is present). */
const claimSources = z.union([claimSource, z.array(claimSource).min(1).max(16)]);

/** Which claims carry subject, email, email_verified and groups (e.g. groups: [realm_access.roles, groups]). */
const claimNames = z
  .strictObject({
    subject: claimSources.default('sub'),
    email: claimSources.default('email'),
    email_verified: claimSources.default('email_verified'),
    groups: claimSources.default('groups'),
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

export const oidcProvider = z.strictObject({
  type: z.literal('oidc'),
  issuer: z.string().min(1).meta({ description: 'OpenID Provider issuer URL (discovery at /.well-known/openid-configuration)' }),
  client_id: z.string().min(1),
  client_secret: z.string().min(1).optional().meta({ description: 'Use ${env:…}; or private_key_jwt' }),
  private_key_jwt: z
    .strictObject({ key: z.string().min(1).meta({ description: 'PEM private key file' }), kid: z.string().optional() })
    .optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).default(['openid', 'email', 'profile']),
  claims: claimNames,
  groups_overage: z
    .strictObject({
      endpoint: z.url({ protocol: /^https?$/ }).meta({ description: 'Microsoft Graph base, e.g. https://graph.microsoft.com/v1.0 (never a URL the token names)' }),
      timeout: duration.prefault('5s'),
    })
    .optional()
    .meta({ description: 'Entra ID group overage: fetch the groups from Graph (POST /me/getMemberGroups) once per session' }),
  ca: z.string().min(1).optional().meta({ description: 'PEM CA for the IdP HTTPS endpoints' }),
  timeout: duration.prefault('5s'),
});

/** GitHub (or GitHub Enterprise Server) as an OAuth 2.0 login: no OIDC, so the gateway asks its REST API. */
export const githubProvider = z.strictObject({
  type: z.literal('github'),
  client_id: z.string().min(1),
  client_secret: z.string().min(1).meta({ description: 'The OAuth app secret (use ${env:…})' }),
  url: z
    .string()
    .min(1)
    .default('https://github.com')
    .meta({ description: 'https://github.com, or a GitHub Enterprise Server base (its /login/oauth/* and /api/v3)' }),
  allowed_organizations: z
    .array(z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/))
    .min(1)
    .meta({ description: 'Only members of one of these organizations log in; groups are their orgs and org/team slugs' }),
  membership_ttl: duration.prefault('10m').meta({ description: 'Organization and team membership is checked again this often' }),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).default(['read:org', 'user:email']),
  claims: claimNames,
  ca: z.string().min(1).optional().meta({ description: 'PEM CA for a GitHub Enterprise Server with a private CA' }),
  timeout: duration.prefault('5s'),
});

export const identityProvider = z.discriminatedUnion('type', [jwtProvider, mtlsProvider, apiKeyProvider, oidcProvider, githubProvider]);
