// Registry: identity_providers config → Authenticators (built once; reused across reloads when unchanged),
// and the authenticate stage for a route: providers in order, first with credentials decides.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { IdentityProviderConfig } from '../config/index.ts';
import { GatewayError, type Identity } from '../core/index.ts';
import { createApiKeyAuthenticator, loadKeysFile } from './api-key.ts';
import { decodeJwt } from 'jose';
import { credentialsFor } from './credentials.ts';
import { createJwtAuthenticator, MAX_TOKEN_BYTES } from './jwt.ts';
import { createMtlsAuthenticator } from './mtls.ts';
import type { AuthRequest, Authenticator } from './types.ts';

export type { Identity } from '../core/index.ts';

export interface BuildContext {
  baseDir: string;
  clientCaConfigured: boolean;
  /** Checksum of listen.tls client_ca + crl (tls-trust.ts): part of an mtls provider's identity. */
  clientTrust?: string | undefined;
  onEvent: (event: string, detail: Record<string, unknown>) => void;
  /** Clock for time-based provider state (JWKS cooldown and max_age); default Date.now. */
  now?: (() => number) | undefined;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function checkFetchUrl(url: string, what: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`${what} is not a valid URL`);
  }
  // Keys fetched over plain HTTP could be swapped by anyone on the path: loopback only (tests, dev IdPs).
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) {
    throw new TypeError(`${what} must be https:// (http:// only on loopback)`);
  }
}

/** A checksum of everything a provider is built from, including referenced file contents. */
export function providerChecksum(cfg: IdentityProviderConfig, baseDir: string): string {
  const files: string[] = [];
  const read = (p: string | undefined) => {
    if (p === undefined) return;
    try {
      files.push(readFileSync(resolve(baseDir, p), 'utf8'));
    } catch {
      files.push(`unreadable:${p}`);
    }
  };
  if (cfg.type === 'api_key') read(cfg.keys_file);
  if (cfg.type === 'jwt') read(cfg.jwks?.ca);
  return createHash('sha256').update(JSON.stringify([cfg, files])).digest('base64url');
}

/** Builds one provider; throws TypeError/Error with an operator-facing message on bad config. */
export function buildAuthenticator(name: string, cfg: IdentityProviderConfig, ctx: BuildContext): Authenticator {
  switch (cfg.type) {
    case 'jwt': {
      const hs = cfg.algorithms.filter((a) => a.startsWith('HS'));
      if (cfg.secret !== undefined && hs.length !== cfg.algorithms.length) {
        throw new TypeError('with a secret, algorithms must be HS256/HS384/HS512 only');
      }
      if (cfg.secret === undefined && hs.length > 0) throw new TypeError('HS* algorithms need a secret');
      if (cfg.secret === undefined) {
        checkFetchUrl(cfg.jwks_uri ?? cfg.issuer, cfg.jwks_uri ? 'jwks_uri' : 'issuer (used for discovery)');
      }
      let ca: string | undefined;
      if (cfg.jwks.ca !== undefined) ca = readFileSync(resolve(ctx.baseDir, cfg.jwks.ca), 'utf8');
      return createJwtAuthenticator({
        name,
        issuer: cfg.issuer,
        audiences: cfg.audiences,
        algorithms: cfg.algorithms,
        jwksUri: cfg.jwks_uri,
        secret: cfg.secret,
        clockToleranceMs: cfg.clock_tolerance,
        maxTokenAgeMs: cfg.max_token_age,
        typ: cfg.typ,
        trustEmail: cfg.trust_email,
        claims: cfg.claims,
        jwks: { timeoutMs: cfg.jwks.timeout, cooldownMs: cfg.jwks.cooldown, maxAgeMs: cfg.jwks.max_age, ca },
        cacheEntries: cfg.cache_entries,
        onEvent: ctx.onEvent,
        now: ctx.now,
      });
    }
    case 'mtls':
      if (!ctx.clientCaConfigured) throw new TypeError('type mtls needs listen.tls.client_ca');
      return createMtlsAuthenticator({
        name,
        trustDomain: cfg.trust_domain,
        requireSpiffe: cfg.require_spiffe ?? cfg.trust_domain !== undefined,
        clientTrust: ctx.clientTrust,
      });
    case 'oidc':
    case 'github':
      throw new TypeError(`type ${cfg.type} is built by the login relying party (src/authn/oidc)`);
    case 'api_key':
      return createApiKeyAuthenticator({
        name,
        keys: loadKeysFile(resolve(ctx.baseDir, cfg.keys_file), name),
        header: cfg.header,
      });
  }
}

export type RouteAuthentication = (req: AuthRequest) => Identity | Promise<Identity>;

/** The unverified `iss` of a Bearer JWT: used only to pick which provider verifies it, never trusted. */
function bearerIssuer(authorization: string | undefined): string | undefined {
  const token = credentialsFor(authorization, 'Bearer');
  if (token === undefined || token.length > MAX_TOKEN_BYTES) return undefined;
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The authenticate stage for one route: providers in order, the first that finds credentials decides
 * (never falls through). Several jwt providers share the Bearer scheme, so among them the token's
 * (unverified) issuer picks the one that verifies it; that provider still checks signature, iss and aud.
 */
export function createRouteAuthentication(providers: readonly Authenticator[]): RouteAuthentication {
  const challenges = providers.map((p) => ['www-authenticate', p.challenge] as const);
  const missing = () =>
    new GatewayError('GW_ERR_UNAUTHENTICATED', 'credentials are required for this route', { headers: challenges });
  const jwtByIssuer = new Map<string, Authenticator>();
  for (const p of providers) if (p.type === 'jwt' && p.issuer !== undefined && !jwtByIssuer.has(p.issuer)) jwtByIssuer.set(p.issuer, p);
  const pickByIssuer = jwtByIssuer.size > 1;

  return function authenticate(req) {
    let chosenJwt: Authenticator | undefined;
    if (pickByIssuer) {
      const iss = bearerIssuer(req.authorization);
      chosenJwt = iss === undefined ? undefined : jwtByIssuer.get(iss);
    }
    const candidates = chosenJwt === undefined ? providers : providers.filter((p) => p.type !== 'jwt' || p === chosenJwt);
    return tryFrom(candidates, 0, req);
  };

  /** Synchronous while providers answer synchronously; a provider that resolves "not mine" passes on. */
  function tryFrom(list: readonly Authenticator[], start: number, req: AuthRequest): Identity | Promise<Identity> {
    for (let i = start; i < list.length; i++) {
      const result = (list[i] as Authenticator).authenticate(req);
      if (result === undefined) continue;
      if (result instanceof Promise) return result.then((identity) => identity ?? tryFrom(list, i + 1, req));
      return result;
    }
    throw missing();
  }
}
