// type: jwt — Bearer tokens verified with jose against a JWKS (or a shared secret for HS*), with a bounded
// cache of verified tokens keyed by the token's SHA-256 so the hot path does no signature work.
import { hash } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { Agent } from 'undici';
import { GatewayError, type Identity } from '../core/index.ts';
import { credentialsFor, isToken68, unauthenticated } from './credentials.ts';
import { RemoteKeySource } from './jwks.ts';
import { compileClaimMapping, MAX_GROUPS, type ClaimsConfig } from './claim-mapping.ts';
import { REALM, type AuthRequest, type Authenticator } from './types.ts';

export const MAX_TOKEN_BYTES = 8192;

export interface JwtProviderOptions {
  name: string;
  issuer: string;
  audiences: string[];
  algorithms: string[];
  jwksUri: string | undefined;
  secret: string | undefined;
  clockToleranceMs: number;
  maxTokenAgeMs: number | undefined;
  typ: string | undefined;
  trustEmail: boolean;
  claims: ClaimsConfig;
  jwks: { timeoutMs: number; cooldownMs: number; maxAgeMs: number; ca: string | undefined };
  cacheEntries: number;
  onEvent?: (event: string, detail: Record<string, unknown>) => void;
  /** Clock for the JWKS cooldown and max_age (default Date.now). */
  now?: (() => number) | undefined;
}

interface CacheEntry {
  identity: Identity;
  expiresAtMs: number;
}

export function createJwtAuthenticator(o: JwtProviderOptions): Authenticator {
  const challenge = `Bearer realm="${REALM}"`;
  const key =
    o.secret !== undefined
      ? new TextEncoder().encode(o.secret)
      : new RemoteKeySource({
          jwksUri: o.jwksUri,
          issuer: o.issuer,
          timeoutMs: o.jwks.timeoutMs,
          cooldownMs: o.jwks.cooldownMs,
          maxAgeMs: o.jwks.maxAgeMs,
          dispatcher: o.jwks.ca ? new Agent({ connect: { ca: o.jwks.ca, rejectUnauthorized: true } }) : undefined,
          onEvent: (e, d) => o.onEvent?.(`jwks_${e}`, { provider: o.name, ...d }),
          now: o.now,
        }).getKey;
  const toleranceS = Math.round(o.clockToleranceMs / 1000);
  const verifyOptions: JWTVerifyOptions = {
    issuer: o.issuer,
    audience: o.audiences,
    algorithms: o.algorithms,
    clockTolerance: toleranceS,
    requiredClaims: ['exp'],
    ...(o.maxTokenAgeMs !== undefined ? { maxTokenAge: Math.round(o.maxTokenAgeMs / 1000) } : {}),
    ...(o.typ !== undefined ? { typ: o.typ } : {}),
  };
  const cache = new Map<string, CacheEntry>();
  const mapping = compileClaimMapping(o.claims);

  function toIdentity(payload: JWTPayload): Identity {
    const subject = mapping.subject(payload);
    if (subject === undefined) throw unauthenticated(challenge, `token has no ${mapping.subjectName} claim`);
    const email = mapping.email(payload);
    const groups = mapping.groups(payload);
    if (groups === null) throw unauthenticated(challenge, `token carries more than ${MAX_GROUPS} groups`);
    const amr = Array.isArray(payload.amr) ? payload.amr.filter((a): a is string => typeof a === 'string') : [];
    return Object.freeze({
      subject,
      provider: o.name,
      issuer: payload.iss,
      method: 'jwt',
      email,
      emailVerified: email !== undefined && (o.trustEmail || mapping.emailVerified(payload)),
      groups: Object.freeze(groups),
      claims: Object.freeze({ ...payload }),
      spiffeId: undefined,
      authTime: typeof payload.auth_time === 'number' ? payload.auth_time : payload.iat,
      amr: Object.freeze(amr),
      acr: typeof payload.acr === 'string' ? payload.acr : undefined,
      expiresAt: payload.exp,
    });
  }

  /**
   * jose's key sets refuse to pick when several keys match a token without `kid` (e.g. two ES256 keys during
   * a rotation) and hand back the candidates instead: try each, as jose documents.
   */
  async function verifySignatureAndClaims(token: string): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], verifyOptions)).payload;
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw err;
      for await (const candidate of err as unknown as AsyncIterable<CryptoKey>) {
        try {
          return (await jwtVerify(token, candidate, verifyOptions)).payload;
        } catch (inner) {
          if (!(inner instanceof joseErrors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new joseErrors.JWSSignatureVerificationFailed();
    }
  }

  async function verify(token: string, cacheKey: string): Promise<Identity> {
    try {
      const header = decodeProtectedHeader(token);
      // Keys come only from our configuration, never from the token itself.
      if ('jwk' in header || 'jku' in header || 'x5u' in header || 'x5c' in header) {
        throw unauthenticated(challenge, 'token headers jwk/jku/x5u/x5c are not accepted');
      }
      const payload = await verifySignatureAndClaims(token);
      // jose checks iat only with maxTokenAge: a token issued in the future (beyond the tolerance) is refused too.
      if (typeof payload.iat === 'number' && payload.iat > Math.floor(Date.now() / 1000) + toleranceS) {
        throw unauthenticated(challenge, 'token claim iat is invalid');
      }
      const identity = toIdentity(payload);
      let expiresAtMs = (payload.exp as number) * 1000;
      if (o.maxTokenAgeMs !== undefined && typeof payload.iat === 'number') {
        expiresAtMs = Math.min(expiresAtMs, payload.iat * 1000 + o.maxTokenAgeMs);
      }
      if (o.cacheEntries > 0) {
        if (cache.size >= o.cacheEntries) cache.delete(cache.keys().next().value as string);
        cache.set(cacheKey, { identity, expiresAtMs });
      }
      return identity;
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw unauthenticated(challenge, 'token expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw unauthenticated(challenge, `token claim ${err.claim} is invalid`);
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw unauthenticated(challenge, 'token algorithm not allowed');
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw unauthenticated(challenge, 'token signing key is unknown');
      throw unauthenticated(challenge, 'token is invalid');
    }
  }

  return {
    name: o.name,
    type: 'jwt',
    issuer: o.issuer,
    challenge,
    consumes: ['authorization'],
    authenticate(req: AuthRequest) {
      const token = credentialsFor(req.authorization, 'Bearer');
      if (token === undefined) return undefined;
      if (token.length > MAX_TOKEN_BYTES) throw unauthenticated(challenge, 'token too large');
      if (!isToken68(token) || token.split('.').length !== 3) throw unauthenticated(challenge, 'token is not a signed JWT');
      const cacheKey = hash('sha256', token, 'base64url');
      const hit = cache.get(cacheKey);
      if (hit !== undefined) {
        if (Date.now() < hit.expiresAtMs) return hit.identity;
        cache.delete(cacheKey);
      }
      return verify(token, cacheKey);
    },
  };
}
