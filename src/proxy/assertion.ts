// X-ZT-Assertion: a short-lived ES256 JWT saying who the gateway verified, for upstreams that can check it
// against /.well-known/zt-gateway/jwks.json. Signatures are cached per identity and audience.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, type JWK } from 'jose';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Identity } from '../core/index.ts';
import type { GroupsView } from './groups-filter.ts';
import { ConfigError, type ConfigReport, type Config } from '../config/index.ts';

export interface AssertionSigner {
  readonly kid: string;
  readonly jwks: { keys: JWK[] };
  /**
   * Returns a cached token when one with at least half its lifetime left exists. `groups`: the route's
   * groups_filter view (absent: every group).
   */
  sign(identity: Identity, audience: string, groups?: GroupsView): string | Promise<string>;
}

let generatedKey: KeyObject | undefined;

/** The process-wide generated key (kept across reloads so upstreams do not see the key flap). */
export function generatedAssertionKey(): KeyObject {
  generatedKey ??= generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return generatedKey;
}

/** Cluster workers use the primary's generated key: one JWKS, whichever worker an upstream asks. */
export function shareGeneratedAssertionKey(pem: string): void {
  generatedKey = loadAssertionKey(pem);
}

export function loadAssertionKey(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('assertion key must be an EC P-256 private key (PEM)');
  }
  return key;
}

/**
 * The assertion signer when identity_headers.assertion or some route asks for it (null otherwise); reports
 * with `path` under identity_headers. Not frozen: the signer caches signatures per identity.
 */
export function compileAssertion(config: Config, baseDir: string, report: ConfigReport, warn: (message: string) => void): AssertionSigner | null {
  const ih = config.identity_headers;
  let signer: AssertionSigner | null = null;
  if (ih.assertion || config.routes.some((r) => r.identity_headers.assertion === true)) {
    try {
      let key;
      if (ih.assertion_key !== undefined) key = loadAssertionKey(readFileSync(resolve(baseDir, ih.assertion_key), 'utf8'));
      else {
        key = generatedAssertionKey();
        warn('identity_headers.assertion_key is not set: using a key generated at start (upstreams must refetch the JWKS after a restart)');
      }
      signer = createAssertionSigner(key, ih.issuer, Math.min(60, Math.max(1, Math.round(ih.assertion_ttl / 1000))));
    } catch (err) {
      report(new ConfigError('CFG_BAD_FILE', ['assertion_key'], (err as Error).message));
    }
  }
  if (ih.assertion_ttl > 60_000) report(new ConfigError('CFG_BAD_VALUE', ['assertion_ttl'], 'assertion_ttl may be at most 60s'));
  return signer;
}

export function createAssertionSigner(key: KeyObject, issuer: string, ttlSeconds: number): AssertionSigner {
  const { crv, x, y } = createPublicKey(key).export({ format: 'jwk' }) as { crv: string; x: string; y: string };
  // RFC 7638 thumbprint: SHA-256 of the required members in lexical order.
  const kid = createHash('sha256').update(JSON.stringify({ crv, kty: 'EC', x, y })).digest('base64url');
  const jwk: JWK = { kty: 'EC', crv, x, y, kid, alg: 'ES256', use: 'sig' };
  const cache = new WeakMap<Identity, Map<string, { token: string; refreshAt: number }>>();

  return {
    kid,
    jwks: { keys: [jwk] },
    sign(identity, audience, groups) {
      const now = Date.now();
      let perAudience = cache.get(identity);
      const cacheKey = groups === undefined ? audience : `${audience}\n${groups.filter}`;
      const hit = perAudience?.get(cacheKey);
      if (hit && now < hit.refreshAt) return hit.token;
      const iat = Math.floor(now / 1000);
      // Never outlive the identity it vouches for.
      // An identity accepted within clock tolerance may be a few seconds past its exp: never sign an
      // assertion that is born expired.
      const exp = Math.max(iat + 1, Math.min(iat + ttlSeconds, identity.expiresAt ?? Number.MAX_SAFE_INTEGER));
      return new SignJWT({
        email: identity.email,
        email_verified: identity.email === undefined ? undefined : identity.emailVerified,
        groups: groups?.groups ?? identity.groups,
        groups_truncated: groups?.truncated ? true : undefined,
        amr: identity.amr.length ? identity.amr : undefined,
        acr: identity.acr,
        spiffe_id: identity.spiffeId,
        auth_method: identity.method,
        idp: identity.provider,
      })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(identity.subject)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(key)
        .then((token) => {
          if (!perAudience) cache.set(identity, (perAudience = new Map()));
          perAudience.set(cacheKey, { token, refreshAt: now + ((exp - iat) * 1000) / 2 });
          return token;
        });
    },
  };
}
