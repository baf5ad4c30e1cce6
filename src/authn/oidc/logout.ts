// RP-initiated logout (/.zt/logout) and OIDC Back-Channel Logout 1.0 (/.zt/backchannel-logout).
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { Redis } from 'ioredis';
import { RemoteKeySource } from '../jwks.ts';
import type { OidcClient } from './client.ts';
import { GatewayError } from '../../core/index.ts';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export interface LogoutTokenVerifier {
  /** Returns the provider name and the sid/sub to end, or throws with a reason. */
  verify(token: string): Promise<{ provider: string; sid?: string; sub?: string }>;
}

export function createLogoutTokenVerifier(clients: ReadonlyMap<string, OidcClient>, redis: Redis | null): LogoutTokenVerifier {
  const keySources = new Map<string, RemoteKeySource>();
  const seenJti = new Map<string, number>();

  async function keysFor(client: OidcClient): Promise<RemoteKeySource> {
    let ks = keySources.get(client.name);
    if (!ks) {
      const jwksUri = await client.jwksUri();
      if (!jwksUri) throw new Error('the identity provider publishes no jwks_uri');
      ks = new RemoteKeySource({ jwksUri, issuer: client.cfg.issuer, timeoutMs: client.cfg.timeout, cooldownMs: 30_000, maxAgeMs: 600_000, dispatcher: client.dispatcher });
      keySources.set(client.name, ks);
    }
    return ks;
  }

  async function replayed(provider: string, jti: string, expSeconds: number): Promise<boolean> {
    const key = `${provider}|${jti}`;
    if (redis) {
      // Shared across instances: the first to see a jti wins.
      const ok = await redis.set(`ztgw:bclogout:${key}`, '1', 'EX', Math.max(60, expSeconds), 'NX');
      return ok === null;
    }
    const now = Date.now();
    for (const [k, until] of seenJti) if (until < now) seenJti.delete(k);
    if (seenJti.has(key)) return true;
    seenJti.set(key, now + Math.max(60, expSeconds) * 1000);
    return false;
  }

  return {
    async verify(token) {
      if (token.length > 8192) throw new Error('logout token too large');
      let iss: unknown;
      let aud: unknown;
      let typ: string | undefined;
      try {
        ({ iss, aud } = decodeJwt(token));
        ({ typ } = decodeProtectedHeader(token));
      } catch {
        throw new Error('logout token is not a JWT');
      }
      // Explicit typing (Back-Channel Logout 1.0 §2.4): a token typed as anything else (an ID token, an
      // access token) is never taken as a logout token.
      if (typ !== undefined && !/^(application\/)?logout\+jwt$/i.test(typ)) throw new Error('logout token has another typ');
      // Several providers may share an issuer (one client each): the audience picks the provider; the
      // signature, issuer and audience are then verified for that one.
      const sameIssuer = [...clients.values()].filter((c) => c.cfg.issuer === iss);
      const audiences = Array.isArray(aud) ? aud : [aud];
      const client = sameIssuer.find((c) => audiences.includes(c.cfg.client_id)) ?? sameIssuer[0];
      if (!client) throw new Error('logout token from an unknown issuer');
      const ks = await keysFor(client);
      let payload;
      try {
        ({ payload } = await jwtVerify(token, ks.getKey, {
          issuer: client.cfg.issuer,
          audience: client.cfg.client_id,
          algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
          requiredClaims: ['iat', 'exp', 'jti'],
          maxTokenAge: '10m',
          clockTolerance: 30,
        }));
      } catch (err) {
        if (err instanceof joseErrors.JOSEError) throw new Error(`logout token rejected (${err.code})`);
        throw err;
      }
      const events = payload.events as Record<string, unknown> | undefined;
      if (!events || typeof events !== 'object' || typeof events[EVENT] !== 'object' || events[EVENT] === null) {
        throw new Error('logout token lacks the back-channel logout event');
      }
      if ('nonce' in payload) throw new Error('logout token must not contain a nonce');
      const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
      const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
      if (sid === undefined && sub === undefined) throw new Error('logout token needs sid or sub');
      let again: boolean;
      try {
        again = await replayed(client.name, String(payload.jti), 600);
      } catch (err) {
        // The replay store is down: answer 503 so the IdP retries, rather than 400 (which it would not).
        throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the replay store is unreachable', { cause: err });
      }
      if (again) throw new Error('logout token replayed');
      return { provider: client.name, ...(sid !== undefined ? { sid } : {}), ...(sid === undefined && sub !== undefined ? { sub } : {}) };
    },
  };
}
