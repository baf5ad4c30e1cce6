// One oidc provider's stateful parts: its client (discovery cached, its own TLS agent) and the key source
// for its logout tokens (JWKS cached). Kept across reloads while the provider's config and the files it
// names (CA, private key) are unchanged.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GithubProviderConfig, OidcProviderConfig } from '../../config/index.ts';
import { createGithubClient } from './github.ts';
import { RemoteKeySource } from '../jwks.ts';
import { createOidcClient } from './client.ts';
import { checksum, type ProviderParts, type RpState } from './state.ts';

export type { ProviderParts };

/** The providers a browser logs in with: OpenID Providers, and GitHub (OAuth 2.0 and its REST API). */
export type LoginProviderConfig = OidcProviderConfig | GithubProviderConfig;


/** A checksum of the provider's config and of the files it names (their content, not just their path). */
export function providerPartsKey(name: string, cfg: LoginProviderConfig, baseDir: string): string {
  const files = [cfg.ca, cfg.type === 'oidc' ? cfg.private_key_jwt?.key : undefined].map((p) => {
    if (p === undefined) return null;
    try {
      return readFileSync(resolve(baseDir, p), 'utf8');
    } catch {
      return `unreadable:${p}`;
    }
  });
  return checksum(['provider', name, cfg, baseDir, files]);
}

function createProviderParts(name: string, cfg: LoginProviderConfig, baseDir: string, now: () => number): ProviderParts {
  const client = cfg.type === 'github' ? createGithubClient(name, cfg, baseDir, now) : createOidcClient(name, cfg, baseDir, now);
  let keys: RemoteKeySource | undefined;
  return {
    client,
    async keys() {
      if (keys !== undefined) return keys;
      const jwksUri = await client.jwksUri();
      if (!jwksUri) return undefined;
      keys = new RemoteKeySource({ jwksUri, issuer: client.cfg.issuer, timeoutMs: cfg.timeout, cooldownMs: 30_000, maxAgeMs: 600_000, dispatcher: client.dispatcher });
      return keys;
    },
    dispose() {
      void client.dispatcher?.close().catch(() => undefined);
    },
  };
}

/**
 * The parts of every oidc provider (kept or new); a bad provider config throws with its config path. `now`:
 * the gateway's clock (the same for the whole process, so not part of the key).
 */
export function providerParts(
  state: RpState,
  providers: ReadonlyArray<readonly [string, LoginProviderConfig]>,
  baseDir: string,
  now: () => number,
): { keys: Set<string>; parts: Map<string, ProviderParts> } {
  const keys = new Set<string>();
  const parts = new Map<string, ProviderParts>();
  for (const [name, cfg] of providers) {
    const key = providerPartsKey(name, cfg, baseDir);
    try {
      parts.set(name, state.providers.take(key, () => createProviderParts(name, cfg, baseDir, now)));
    } catch (err) {
      throw Object.assign(new TypeError((err as Error).message), { path: ['identity_providers', name] });
    }
    keys.add(key);
  }
  return { keys, parts };
}
