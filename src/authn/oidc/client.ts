// One OpenID Provider as a relying party sees it (openid-client): discovery once (single-flight, retried
// after a cooldown while the IdP is down), the authorization URL, the code exchange, refresh, logout URL.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as oidc from 'openid-client';
import { decodeProtectedHeader, importPKCS8, type CryptoKey } from 'jose';
import { createHash, createPrivateKey, timingSafeEqual } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';
import type { OidcProviderConfig } from '../../config/index.ts';
import { GatewayError } from '../../core/index.ts';
import { endWith, outboundSpan } from '../outbound-span.ts';
import { compileClaimMapping, type ClaimMapping } from '../claim-mapping.ts';
import { resolveGroupsOverage } from './groups-overage.ts';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface TokenResult {
  claims: Record<string, unknown>;
  idToken: string | undefined;
  accessToken: string | undefined;
  refreshToken: string | undefined;
  /** Seconds since the epoch. */
  accessExpiresAt: number | undefined;
  /** Seconds since the epoch: when to refresh (a quarter of the lifetime early, at most 60 s). */
  accessRefreshAt: number | undefined;
  /** The claims were read again (type github's membership re-check): they replace the session's. */
  claimsRechecked?: boolean;
}

export interface OidcClient {
  readonly name: string;
  readonly cfg: OidcProviderConfig;
  /** The provider's `claims:` block, compiled. */
  readonly mapping: ClaimMapping;
  configuration(): Promise<oidc.Configuration>;
  authorizationUrl(p: { redirectUri: string; state: string; nonce: string; challenge: string; acr?: string; maxAge?: number; prompt?: string }): Promise<URL>;
  exchange(callbackUrl: URL, checks: { verifier: string; state: string; nonce: string; maxAge?: number }, redirectUri: string): Promise<TokenResult>;
  refresh(refreshToken: string): Promise<TokenResult>;
  endSessionUrl(params: Record<string, string>): Promise<URL | undefined>;
  jwksUri(): Promise<string | undefined>;
  /** The session's claims are checked again this often (type github); a session that cannot be is over then. */
  readonly recheckMs?: number;
  /** The dispatcher for this IdP's endpoints (its configured CA), undefined for the default. */
  readonly dispatcher: Agent | undefined;
}

function checkIssuer(issuer: string): URL {
  const u = new URL(issuer);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) {
    throw new TypeError('issuer must be https:// (http:// only on loopback)');
  }
  return u;
}

/** `nowMs`: the gateway's clock, on which the access token's expiry is recorded. */
function toResult(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, nowMs: number): TokenResult {
  const claims = (tokens.claims() ?? {}) as Record<string, unknown>;
  const expiresIn = tokens.expiresIn();
  const now = Math.floor(nowMs / 1000);
  return {
    claims,
    idToken: tokens.id_token,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    accessExpiresAt: expiresIn === undefined ? undefined : now + expiresIn,
    // A fixed 60 s margin would refresh short-lived tokens on every request.
    accessRefreshAt: expiresIn === undefined ? undefined : now + expiresIn - Math.min(60, Math.floor(expiresIn / 4)),
  };
}

/** Claims the ID token lacks, from the UserInfo endpoint (a conformant IdP puts email/groups only there). */
const HASH_OF_ALG: Readonly<Record<string, string>> = {
  RS256: 'sha256', PS256: 'sha256', ES256: 'sha256', HS256: 'sha256',
  RS384: 'sha384', PS384: 'sha384', ES384: 'sha384', HS384: 'sha384',
  RS512: 'sha512', PS512: 'sha512', ES512: 'sha512', HS512: 'sha512', EdDSA: 'sha512', Ed25519: 'sha512',
};

/**
 * OIDC Core 3.1.3.6: when the ID token carries at_hash, it must be the left half of the access token's hash
 * (with the ID token's algorithm). openid-client checks c_hash/s_hash only, so the gateway checks this one.
 */
export function checkAtHash(idToken: string | undefined, claims: Record<string, unknown>, accessToken: string | undefined): void {
  const atHash = claims.at_hash;
  if (atHash === undefined) return;
  if (typeof atHash !== 'string' || idToken === undefined || accessToken === undefined) throw new TypeError('at_hash without an access token');
  const alg = decodeProtectedHeader(idToken).alg;
  const hash = alg === undefined ? undefined : HASH_OF_ALG[alg];
  if (hash === undefined) throw new TypeError('at_hash with an unsupported ID token algorithm');
  const digest = createHash(hash).update(accessToken, 'ascii').digest();
  const want = Buffer.from(digest.subarray(0, digest.length / 2).toString('base64url'));
  const got = Buffer.from(atHash);
  if (want.length !== got.length || !timingSafeEqual(want, got)) throw new TypeError('at_hash does not match the access token');
}

async function withUserInfo(c: oidc.Configuration, mapping: ClaimMapping, result: TokenResult): Promise<TokenResult> {
  const claims = result.claims;
  if (mapping.complete(claims) || !c.serverMetadata().userinfo_endpoint || !result.accessToken) return result;
  const sub = claims.sub;
  if (typeof sub !== 'string') return result;
  let info: Record<string, unknown>;
  try {
    // openid-client checks that the UserInfo sub is the ID token's sub.
    info = (await oidc.fetchUserInfo(c, result.accessToken, sub)) as Record<string, unknown>;
  } catch {
    return result; // the ID token alone proves who logged in; the extra claims are best effort
  }
  const merged: Record<string, unknown> = { ...claims };
  for (const [k, v] of Object.entries(info)) if (merged[k] === undefined) merged[k] = v; // the ID token wins
  return { ...result, claims: merged };
}

async function clientAuth(cfg: OidcProviderConfig, baseDir: string): Promise<oidc.ClientAuth> {
  if (cfg.private_key_jwt) {
    const pem = readFileSync(resolve(baseDir, cfg.private_key_jwt.key), 'utf8');
    const k = createPrivateKey(pem);
    const alg = k.asymmetricKeyType === 'rsa' ? 'RS256' : k.asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'ES256';
    const key = (await importPKCS8(pem, alg)) as CryptoKey;
    return oidc.PrivateKeyJwt(cfg.private_key_jwt.kid ? { key, kid: cfg.private_key_jwt.kid } : key);
  }
  return oidc.ClientSecretBasic(cfg.client_secret);
}

/** `clock`: for the access-token expiry of the tokens it obtains (default Date.now). */
/** Which IdP endpoint a URL is, for the span name (the last path segment; never the query). */
function idpCall(url: string): string {
  const path = url.split('?')[0] ?? '';
  if (path.endsWith('/.well-known/openid-configuration')) return 'discovery';
  return path.slice(path.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9_.-]/g, '') || 'call';
}

export function createOidcClient(name: string, cfg: OidcProviderConfig, baseDir: string, clock: () => number = Date.now): OidcClient {
  const issuer = checkIssuer(cfg.issuer);
  if (!cfg.client_secret && !cfg.private_key_jwt) throw new TypeError('an oidc provider needs client_secret or private_key_jwt');
  if (cfg.client_secret && cfg.private_key_jwt) throw new TypeError('use either client_secret or private_key_jwt, not both');
  if (cfg.private_key_jwt) readFileSync(resolve(baseDir, cfg.private_key_jwt.key)); // fail at load when unreadable
  const mapping = compileClaimMapping(cfg.claims);
  if (cfg.groups_overage) checkIssuer(cfg.groups_overage.endpoint); // https (http only on loopback), at load
  const ca = cfg.ca ? readFileSync(resolve(baseDir, cfg.ca), 'utf8') : undefined;
  const agent = ca ? new Agent({ connect: { ca, rejectUnauthorized: true } }) : undefined;
  // Every call openid-client makes (discovery, token, userinfo, JWKS) goes through here: one span each when traced.
  const customFetch: oidc.CustomFetch = (url, options) =>
    endWith(
      outboundSpan(url, options.method, `idp ${idpCall(url)}`),
      undiciFetch(url, { ...(options as object), ...(agent ? { dispatcher: agent } : {}) } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>,
    );

  let discovered: Promise<oidc.Configuration> | undefined;
  let failedAt = 0;
  const COOLDOWN_MS = 5_000;

  async function configuration(): Promise<oidc.Configuration> {
    if (discovered) return discovered;
    if (Date.now() - failedAt < COOLDOWN_MS) throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the identity provider is unavailable');
    const attempt = (async () => {
      const auth = await clientAuth(cfg, baseDir);
      const c = await oidc.discovery(issuer, cfg.client_id, cfg.client_secret ? { client_secret: cfg.client_secret } : {}, auth, {
        [oidc.customFetch]: customFetch,
        timeout: Math.round(cfg.timeout / 1000),
        ...(issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
      c.timeout = Math.round(cfg.timeout / 1000);
      return c;
    })();
    discovered = attempt;
    try {
      return await attempt;
    } catch (err) {
      discovered = undefined;
      failedAt = Date.now();
      throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the identity provider is unavailable', { cause: err });
    }
  }

  return {
    name,
    cfg,
    mapping,
    dispatcher: agent,
    configuration,
    async authorizationUrl(p) {
      const c = await configuration();
      const params: Record<string, string> = {
        redirect_uri: p.redirectUri,
        scope: cfg.scopes.join(' '),
        response_type: 'code',
        state: p.state,
        nonce: p.nonce,
        code_challenge: p.challenge,
        code_challenge_method: 'S256',
      };
      if (p.acr) params.acr_values = p.acr;
      // Ask for the claims step-up and `mfa: true` read (a conformant IdP puts acr/amr in the ID token only
      // when asked), where the IdP supports the claims parameter.
      if (c.serverMetadata().claims_parameter_supported === true) {
        params.claims = JSON.stringify({
          id_token: { auth_time: { essential: true }, acr: p.acr ? { values: [p.acr] } : null, amr: null },
        });
      }
      if (p.maxAge !== undefined) params.max_age = String(p.maxAge);
      if (p.prompt) params.prompt = p.prompt;
      return oidc.buildAuthorizationUrl(c, params);
    },
    async exchange(callbackUrl, checks, redirectUri) {
      const c = await configuration();
      // openid-client checks state, iss, aud, azp, exp, iat, nonce and auth_time vs max_age; at_hash is ours.
      const tokens = await oidc.authorizationCodeGrant(
        c,
        callbackUrl,
        {
          pkceCodeVerifier: checks.verifier,
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          idTokenExpected: true,
          ...(checks.maxAge !== undefined ? { maxAge: checks.maxAge } : {}),
        },
        { redirect_uri: redirectUri },
      );
      const result = toResult(tokens, clock());
      checkAtHash(result.idToken, result.claims, result.accessToken);
      const withInfo = await withUserInfo(c, mapping, result);
      // Entra ID group overage: the groups from the configured Graph endpoint only, never the token's source.
      return resolveGroupsOverage(cfg.groups_overage, withInfo);
    },
    async refresh(refreshToken) {
      return toResult(await oidc.refreshTokenGrant(await configuration(), refreshToken), clock());
    },
    async endSessionUrl(params) {
      const c = await configuration();
      if (!c.serverMetadata().end_session_endpoint) return undefined;
      return oidc.buildEndSessionUrl(c, params);
    },
    async jwksUri() {
      return (await configuration()).serverMetadata().jwks_uri;
    },
  };
}
