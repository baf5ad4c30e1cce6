// A JWKS key source that jose's createRemoteJWKSet does not give us: stale keys survive an unreachable IdP,
// refetch on unknown kid is single-flight with a cooldown, and discovery finds jwks_uri from the issuer.
import { readBoundedBody, GatewayError } from '../core/index.ts';
import { createLocalJWKSet, type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput, type CryptoKey, type KeyObject } from 'jose';
import { request, type Dispatcher } from 'undici';
import { endWith, outboundSpan } from './outbound-span.ts';

export interface JwksOptions {
  /** Known jwks_uri, or undefined to discover it from `${issuer}/.well-known/openid-configuration`. */
  jwksUri: string | undefined;
  issuer: string;
  timeoutMs: number;
  cooldownMs: number;
  maxAgeMs: number;
  dispatcher: Dispatcher | undefined;
  onEvent?: (event: 'refreshed' | 'refresh_failed', detail: Record<string, unknown>) => void;
  /** Clock for the cooldown and max_age (default Date.now; tests advance their own). */
  now?: (() => number) | undefined;
}

type KeyFn = (header: JWTHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey | KeyObject>;

const MAX_DOC_BYTES = 512 * 1024;

async function fetchJson(url: string, opts: JwksOptions, call: 'jwks' | 'discovery'): Promise<unknown> {
  const sent = request(url, {
    method: 'GET',
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(opts.timeoutMs),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  });
  const res = await endWith(outboundSpan(url, 'GET', call), sent);
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`HTTP ${res.statusCode} from ${url}`);
  }
  const body = await readBoundedBody(res, MAX_DOC_BYTES, () => new Error(`document from ${url} is too large`));
  return JSON.parse(body.toString('utf8')) as unknown;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Same rule as for a configured jwks_uri: https, or plain http only on loopback (tests, dev IdPs). */
function checkDiscoveredUri(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error('discovery document jwks_uri is not a valid URL');
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) {
    throw new Error('discovery document jwks_uri must be https:// (http:// only on loopback)');
  }
  return value;
}

export class RemoteKeySource {
  readonly #opts: JwksOptions;
  #jwksUri: string | undefined;
  #keys: ReturnType<typeof createLocalJWKSet> | undefined;
  #kids = new Set<string>();
  #fetchedAt = 0;
  #lastAttempt = 0;
  #pending: Promise<void> | undefined;
  readonly #now: () => number;

  constructor(opts: JwksOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#jwksUri = opts.jwksUri;
  }

  /** For jose's jwtVerify: resolves the key for a token header, refreshing when that is allowed. */
  readonly getKey: KeyFn = async (header, token) => {
    const now = this.#now();
    if (this.#keys === undefined) {
      await this.#refresh();
    } else if (header.kid !== undefined && !this.#kids.has(header.kid)) {
      await this.#refresh(); // unknown kid: maybe rotated in
    } else if (now - this.#fetchedAt > this.#opts.maxAgeMs) {
      void this.#refresh(); // background refresh; cached keys keep working meanwhile
    }
    if (this.#keys === undefined) {
      throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the identity provider keys are unavailable');
    }
    return this.#keys(header, token);
  };

  /** Single-flight fetch, at most one attempt per cooldown (no refetch storm while the IdP is down). */
  #refresh(): Promise<void> {
    if (this.#pending) return this.#pending;
    const now = this.#now();
    if (this.#lastAttempt !== 0 && now - this.#lastAttempt < this.#opts.cooldownMs) return Promise.resolve();
    this.#lastAttempt = now;
    this.#pending = this.#load()
      .catch((err: unknown) => {
        this.#opts.onEvent?.('refresh_failed', { issuer: this.#opts.issuer, error: (err as Error).message });
      })
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  async #load(): Promise<void> {
    if (this.#jwksUri === undefined) {
      const url = `${this.#opts.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const doc = (await fetchJson(url, this.#opts, 'discovery')) as { issuer?: unknown; jwks_uri?: unknown };
      if (doc.issuer !== this.#opts.issuer) throw new Error('discovery document issuer does not match the configured issuer');
      if (typeof doc.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
      this.#jwksUri = checkDiscoveredUri(doc.jwks_uri);
    }
    const jwks = (await fetchJson(this.#jwksUri, this.#opts, 'jwks')) as JSONWebKeySet;
    if (!jwks || !Array.isArray(jwks.keys)) throw new Error('JWKS document has no keys array');
    // Only signature keys, and never symmetric ones from a remote set.
    const keys = jwks.keys.filter((k) => k.kty !== 'oct' && (k.use === undefined || k.use === 'sig'));
    this.#keys = createLocalJWKSet({ keys });
    this.#kids = new Set(keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
    this.#fetchedAt = this.#now();
    this.#opts.onEvent?.('refreshed', { issuer: this.#opts.issuer, keys: keys.length });
  }
}
