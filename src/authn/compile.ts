// identity_providers compiled at load: one Authenticator per provider (an unchanged one, with its JWKS and
// token caches, is reused across reloads), the OIDC relying party, and each route's authentication.
import { ConfigError, type ConfigReport, type Config, type RouteConfig } from '../config/index.ts';
import type { RelyingParty, RpServices } from './oidc/index.ts';
import { buildAuthenticator, createRouteAuthentication, providerChecksum, type RouteAuthentication } from './route-authentication.ts';
import type { Authenticator } from './types.ts';
import type { PublicOrigins } from '../normalize/index.ts';

/** A provider and the checksum of what it was built from. Not frozen: authenticators hold live caches. */
export type ProviderEntry = { checksum: string; authenticator: Authenticator };

export interface CompiledProviders {
  /** Not frozen (a Map of live authenticators); never changed after compile. */
  readonly providers: ReadonlyMap<string, ProviderEntry>;
  /** Providers already reported as unusable: routes naming them get no second error. */
  readonly broken: ReadonlySet<string>;
  readonly rp: RelyingParty | null;
}

export interface ProviderOptions {
  previous: ReadonlyMap<string, ProviderEntry> | undefined;
  services: RpServices | undefined;
  clientTrust: string | undefined;
  onEvent: ((event: string, detail: Record<string, unknown>) => void) | undefined;
  /** listen.public_urls, compiled once: the relying party builds redirect URIs with it. */
  publicOrigins?: PublicOrigins | undefined;
}

/** An error from a module that still throws `{ path }` errors (authn/oidc): a ConfigError at that path. */
function asConfigError(err: unknown, fallback: (string | number)[]): ConfigError {
  if (err instanceof ConfigError) return err;
  const path = (err as { path?: (string | number)[] }).path ?? fallback;
  return new ConfigError('CFG_BAD_VALUE', path, (err as Error).message);
}

/**
 * The OIDC relying party when a provider is type oidc (null otherwise). Its module, with openid-client, is
 * imported only then: a config without OIDC never loads it. Reports an unusable one and marks its providers.
 */
async function compileRelyingParty(config: Config, baseDir: string, options: ProviderOptions, report: ConfigReport, broken: Set<string>): Promise<RelyingParty | null> {
  const oidcNames = Object.entries(config.identity_providers).filter(([, cfg]) => cfg.type === 'oidc' || cfg.type === 'github').map(([name]) => name);
  if (oidcNames.length === 0) return null;
  const { createRelyingParty, standaloneServices } = await import('./oidc/index.ts');
  try {
    return createRelyingParty(config, baseDir, options.services ?? standaloneServices(), options.onEvent, options.publicOrigins);
  } catch (err) {
    report(asConfigError(err, ['session']));
    for (const name of oidcNames) broken.add(name);
    return null;
  }
}

/** Reports every unusable provider (path from the config root). */
export async function compileProviders(config: Config, baseDir: string, options: ProviderOptions, report: ConfigReport): Promise<CompiledProviders> {
  const providers = new Map<string, ProviderEntry>();
  const broken = new Set<string>();
  const rp = await compileRelyingParty(config, baseDir, options, report, broken);
  for (const [name, cfg] of Object.entries(config.identity_providers)) {
    if (cfg.type === 'oidc' || cfg.type === 'github') {
      const a = rp?.authenticators.get(name);
      if (a) providers.set(name, { checksum: '', authenticator: a });
      continue;
    }
    // An mtls provider (and its per-connection identity cache) is rebuilt when the client CA or CRL changes.
    const checksum = providerChecksum(cfg, baseDir) + (cfg.type === 'mtls' ? `:${options.clientTrust ?? ''}` : '');
    const reused = options.previous?.get(name);
    if (reused && reused.checksum === checksum) {
      providers.set(name, reused);
      continue;
    }
    try {
      const authenticator = buildAuthenticator(name, cfg, {
        baseDir,
        clientCaConfigured: config.listen.tls?.client_ca !== undefined,
        clientTrust: options.clientTrust,
        onEvent: options.onEvent ?? (() => undefined),
        now: options.services?.now ?? Date.now,
      });
      providers.set(name, { checksum, authenticator });
    } catch (err) {
      report(asConfigError(err, ['identity_providers', name]));
      broken.add(name);
    }
  }
  return Object.freeze({ providers, broken, rp });
}

export interface CompiledRouteAuth {
  readonly authenticate: RouteAuthentication | null;
  readonly providers: readonly Authenticator[];
}

export type StepUp = { readonly acr: string | undefined; readonly maxAgeS: number | undefined; readonly riskAbove?: number | undefined };

/** A route's authenticate list (the usable providers); reports problems with `path` relative to the route. */
export function compileRouteAuth(r: RouteConfig, compiled: Pick<CompiledProviders, 'providers' | 'broken'>, report: ConfigReport): CompiledRouteAuth {
  if (r.public && r.authenticate !== undefined) {
    report(new ConfigError('CFG_CONFLICT', ['public'], 'a public route cannot also list authenticate (public skips authentication)'));
  }
  const list: Authenticator[] = [];
  (r.authenticate ?? []).forEach((name, i) => {
    const p = compiled.providers.get(name);
    if (p !== undefined) list.push(p.authenticator);
    // A provider that failed to compile was reported already; the route cannot be used either way.
    else report(new ConfigError('CFG_UNKNOWN_NAME', ['authenticate', i], `unknown identity provider "${name}"`), compiled.broken.has(name));
  });
  return Object.freeze({ authenticate: list.length > 0 ? createRouteAuthentication(list) : null, providers: Object.freeze(list) });
}

/** A route's step_up (null: none); throws ConfigError (path relative to the route) when it cannot be met. */
export function compileStepUp(cfg: RouteConfig['step_up'], providers: readonly Authenticator[]): StepUp | null {
  if (cfg === undefined) return null;
  // Every caller is held to step_up (browsers are sent to log in again, others get a 401): a route whose
  // providers can never carry acr/auth_time (only API keys or certificates) could never be passed.
  if (cfg.when === undefined && !providers.some((p) => p.type === 'oidc' || p.type === 'jwt')) {
    const message = 'step_up needs an oidc or jwt provider in authenticate (API keys and certificates carry no acr or auth_time)';
    throw new ConfigError('CFG_CONFLICT', ['step_up'], message);
  }
  return Object.freeze({
    acr: cfg.acr ?? (cfg.when ? 'mfa' : undefined),
    maxAgeS: cfg.max_age === undefined ? undefined : Math.round(cfg.max_age / 1000),
    riskAbove: cfg.when?.risk_above,
  });
}
