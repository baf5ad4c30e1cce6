// Back-channel logout tokens (OIDC Back-Channel Logout 1.0): verified against the provider's keys, typed,
// with the logout event, sid or sub, and a jti never seen before (in Redis when shared).
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { Redis } from 'ioredis';
import { GatewayError } from '../../core/index.ts';
import type { ProviderParts } from './providers.ts';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Why a logout token was refused: stable names, logged (never the client's answer, which is one code). */
export type LogoutRefusal =
  | 'missing' | 'too_large' | 'not_jwt' | 'typ' | 'unknown_issuer' | 'no_jwks' | 'rejected'
  | 'no_event' | 'nonce' | 'no_subject' | 'replayed';

export class LogoutTokenError extends Error {
  readonly reason: LogoutRefusal;
  constructor(reason: LogoutRefusal, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogoutTokenError';
    this.reason = reason;
  }
}

export interface LogoutTarget {
  provider: string;
  sid?: string;
  sub?: string;
}

export interface LogoutTokenVerifier {
  /** The provider name and the sid/sub to end; throws a LogoutTokenError (or a 503 GatewayError). */
  verify(token: string): Promise<LogoutTarget>;
}

/** `seen`: jtis already used (provider|jti → until, ms), kept across reloads; Redis replaces it when set. */
export function createLogoutTokenVerifier(providers: ReadonlyMap<string, ProviderParts>, redis: Redis | null, seen: Map<string, number>): LogoutTokenVerifier {
  async function replayed(provider: string, jti: string, expSeconds: number): Promise<boolean> {
    const key = `${provider}|${jti}`;
    if (redis) {
      // Shared across instances: the first to see a jti wins.
      const ok = await redis.set(`ztgw:bclogout:${key}`, '1', 'EX', Math.max(60, expSeconds), 'NX');
      return ok === null;
    }
    const now = Date.now();
    for (const [k, until] of seen) if (until < now) seen.delete(k);
    if (seen.has(key)) return true;
    seen.set(key, now + Math.max(60, expSeconds) * 1000);
    return false;
  }

  /** The provider the token claims to come from (its issuer, then its audience), before any verification. */
  function claimedProvider(token: string): ProviderParts {
    if (token.length > 8192) throw new LogoutTokenError('too_large', 'logout token too large');
    let iss: unknown;
    let aud: unknown;
    let typ: string | undefined;
    try {
      ({ iss, aud } = decodeJwt(token));
      ({ typ } = decodeProtectedHeader(token));
    } catch (err) {
      throw new LogoutTokenError('not_jwt', 'logout token is not a JWT', { cause: err });
    }
    // Explicit typing (Back-Channel Logout 1.0 §2.4): a token typed as anything else (an ID token, an
    // access token) is never taken as a logout token.
    if (typ !== undefined && !/^(application\/)?logout\+jwt$/i.test(typ)) throw new LogoutTokenError('typ', 'logout token has another typ');
    // Several providers may share an issuer (one client each): the audience picks the provider; the
    // signature, issuer and audience are then verified for that one.
    const sameIssuer = [...providers.values()].filter((p) => p.client.cfg.issuer === iss);
    const audiences = Array.isArray(aud) ? aud : [aud];
    const parts = sameIssuer.find((p) => audiences.includes(p.client.cfg.client_id)) ?? sameIssuer[0];
    if (!parts) throw new LogoutTokenError('unknown_issuer', 'logout token from an unknown issuer');
    return parts;
  }

  async function verifiedPayload(token: string, parts: ProviderParts): Promise<Record<string, unknown>> {
    const ks = await parts.keys();
    if (ks === undefined) throw new LogoutTokenError('no_jwks', 'the identity provider publishes no jwks_uri');
    const cfg = parts.client.cfg;
    try {
      const { payload } = await jwtVerify(token, ks.getKey, {
        issuer: cfg.issuer,
        audience: cfg.client_id,
        algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        requiredClaims: ['iat', 'exp', 'jti'],
        maxTokenAge: '10m',
        clockTolerance: 30,
      });
      return payload;
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) throw new LogoutTokenError('rejected', `logout token rejected (${err.code})`, { cause: err });
      throw err;
    }
  }

  return {
    async verify(token) {
      if (!token) throw new LogoutTokenError('missing', 'missing logout_token');
      const parts = claimedProvider(token);
      const payload = await verifiedPayload(token, parts);
      const events = payload.events as Record<string, unknown> | undefined;
      if (!events || typeof events !== 'object' || typeof events[EVENT] !== 'object' || events[EVENT] === null) {
        throw new LogoutTokenError('no_event', 'logout token lacks the back-channel logout event');
      }
      if ('nonce' in payload) throw new LogoutTokenError('nonce', 'logout token must not contain a nonce');
      const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
      const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
      if (sid === undefined && sub === undefined) throw new LogoutTokenError('no_subject', 'logout token needs sid or sub');
      const provider = parts.client.name;
      let again: boolean;
      try {
        again = await replayed(provider, String(payload.jti), 600);
      } catch (err) {
        // The replay store is down: answer 503 so the IdP retries, rather than 400 (which it would not).
        throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the replay store is unreachable', { cause: err });
      }
      if (again) throw new LogoutTokenError('replayed', 'logout token replayed');
      return { provider, ...(sid !== undefined ? { sid } : {}), ...(sid === undefined && sub !== undefined ? { sub } : {}) };
    },
  };
}
