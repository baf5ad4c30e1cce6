// The config compiler: calls every step's compiler (each in its step's folder) and assembles the frozen
// CompiledConfig that the request path reads. Runs at load and on reload, never per request. Every
// problem is gathered (located in the file) and thrown together as one ConfigError.
import { compileProviders, createRouteAuthentication, type Authenticator, type ProviderEntry, type RouteAuthentication, type RelyingParty, type RpServices } from '../authn/index.ts';
import { type MfaSets, compileDevices, type CompiledDevices, compileMfa } from '../authz/index.ts';
import { crossKeyProblems, CONFIG_INVALID, ConfigError, formatPath, type ConfigProblem, type ConfigReport, freezeData, type LoadedConfig, type Config } from '../config/index.ts';
import { compileAddressSet, compilePublicOrigins, compileTrustedProxies, type AddressSet, type PublicOrigins } from '../normalize/index.ts';
import { compileAssertion, type AssertionSigner, customIdentityHeaders } from '../proxy/index.ts';
import { compileErrorPages, compileSecurityHeaders, cspTokenKey, type ErrorPages, type SecurityHeaderSet } from '../response/index.ts';
import { compileRisk, type RiskSettings } from '../risk/index.ts';
import { compileNamedHosts, createRouter, createSpellingGuard, spellingConflicts, type Router, type SpellingGuard } from '../routing/index.ts';
import type { CompiledRoute } from './route.ts';
import { compileTlsMaterial, type TlsMaterial } from './tls-material.ts';
import { compileExtAuthzListener, type ExtAuthzListener } from './ext-authz-listener.ts';
import { compileGrants, type CompiledGrant } from '../state/index.ts';
import { attempt, attemptAsync, compileRoutes } from './compile-route.ts';
import { loadRouteValidatorCompiler } from '../validate/index.ts';
import { loadTracer, type GatewayTracer } from '../tracing/index.ts';


/**
 * Frozen, and so is every compiled part (deep where it is plain data, e.g. `config`). Not frozen, because
 * they hold live state or are containers a freeze cannot protect: the `providers` and `grants` Maps
 * (authenticators with JWKS and token caches), `rp` (sessions, stores), `assertion` (signature cache),
 * `router` (its lookup tables), `risk.geo` (the GeoIP reader), the route validators, and Sets such as
 * `mfa.amr` or a route's `dropHeaders` (never changed after compile).
 */
export interface CompiledConfig {
  readonly source: LoadedConfig;
  readonly config: Config;
  readonly routes: readonly CompiledRoute[];
  readonly router: Router<CompiledRoute>;
  /** Refuses spellings of a routed path that its upstream would read as another route's (routing/spelling.ts). */
  readonly spelling: SpellingGuard;
  /** Whether some route names the host: only such hosts may start a login. */
  readonly namesHost: (host: string) => boolean;
  readonly trustedProxies: AddressSet;
  /** listen.public_urls: the origin clients see per host (login redirect URIs, cross-site checks). */
  readonly publicOrigins: PublicOrigins;
  readonly tls: TlsMaterial | null;
  readonly identityPrefix: string;
  /** What counts as a multi-factor login (authz.mfa), as sets: policy, step-up and metrics read this. */
  readonly mfa: MfaSets;
  readonly providers: ReadonlyMap<string, ProviderEntry>;
  readonly assertion: AssertionSigner | null;
  /** The OIDC relying party, when any provider is type oidc. */
  readonly rp: RelyingParty | null;
  readonly devices: CompiledDevices | null;
  /** Risk scoring settings (and the GeoIP database); null when nothing uses risk. */
  readonly risk: RiskSettings | null;
  /** Security headers for answers that belong to no route (problems, reserved paths). */
  readonly security: SecurityHeaderSet;
  /** Routes by the token of their CSP report endpoint (`/.zt/csp-report/<token>`). */
  readonly cspRoutes: ReadonlyMap<string, CompiledRoute>;
  /** Problems that do not stop the config from loading (e.g. a generated assertion key). */
  readonly warnings: readonly string[];
  /** Just-in-time grants by name. */
  readonly grants: ReadonlyMap<string, CompiledGrant>;
  /** tracing.otlp: the span exporter (the SDK is loaded only then); null: no span is ever made. */
  readonly tracer: GatewayTracer | null;
  /** The Envoy ext_authz gRPC listener (`ext_authz:`); null when not configured. */
  readonly extAuthz: ExtAuthzListener | null;
  /** Pages for browser navigations (error_pages, or the built-in page): compiled here, re-read on reload. */
  readonly errorPages: ErrorPages;
  /** GET /.zt/grants: every provider some grant accepts, in order; null when no grant is configured. */
  readonly grantsAuthenticate: RouteAuthentication | null;
  /** The oidc provider a person signs in with to see /.zt/grants; undefined: none. */
  readonly grantsLoginProvider: string | undefined;
}

export interface CompileOptions {
  /** The running config: unchanged providers (and their JWKS and token caches) are reused. */
  previous?: CompiledConfig;
  /** Connections and caches that outlive reloads (Redis, session revocations). */
  services?: RpServices;
  onEvent?: (event: string, detail: Record<string, unknown>) => void;
}

const NO_SECURITY_HEADERS: SecurityHeaderSet = Object.freeze({ flat: [], names: new Set<string>(), keepUpstream: new Set<string>() });

/** Turns ConfigErrors (path from the config root) into problems located in the file, redacted, in order. */
function problemSink(source: LoadedConfig): { problems: ConfigProblem[]; report: ConfigReport } {
  const problems: ConfigProblem[] = [];
  const report: ConfigReport = (err, silent) => {
    if (silent) return;
    const { code: c, path: keyPath } = err;
    if (c === CONFIG_INVALID) {
      problems.push(...err.problems); // already located (a whole file's problems)
      return;
    }
    if (err.external) {
      const { file, line } = err.external;
      problems.push({ file, path: '', message: err.message, code: c, keyPath: [], ...(line ? { line, col: 1 } : {}) });
      return;
    }
    const path = formatPath(keyPath);
    const message = source.redact?.(path, err.message) ?? err.message;
    problems.push({ file: source.file, path, message, code: c, keyPath, ...source.locate(keyPath) });
  };
  return { problems, report };
}

/**
 * Asynchronous because the modules a config needs are imported on first use (the OIDC relying party, the
 * validation compiler, the GeoIP reader): a config that uses none of them never loads them. Builds a whole
 * new CompiledConfig; the caller swaps it in only when it is returned (a throw leaves the running one).
 */
export async function compileConfig(source: LoadedConfig, options: CompileOptions = {}): Promise<CompiledConfig> {
  const { config, baseDir } = source;
  const { problems, report } = problemSink(source);
  const compileValidator = config.routes.some((r) => r.validate !== undefined) ? await loadRouteValidatorCompiler() : null;
  const trustedProxies = attempt(report, ['trusted_proxies'], () => compileTrustedProxies(config.trusted_proxies)) ?? compileAddressSet([]);
  const onMismatch = (d: { public_url: string; host: string }) => options.onEvent?.('public_url_mismatch', d);
  const publicOrigins = attempt(report, ['listen', 'public_urls'], () => compilePublicOrigins(config.listen.public_urls, onMismatch)) ?? compilePublicOrigins([]);
  const tls = config.listen.tls ? compileTlsMaterial(config.listen.tls, baseDir, (e) => report(e.within(['listen', 'tls']))) : null;
  const extAuthz = config.ext_authz ? compileExtAuthzListener(config.ext_authz, baseDir, (e) => report(e.within(['ext_authz']))) : null;
  const { previous } = options;
  const providerOptions = { previous: previous?.providers, services: options.services, clientTrust: tls?.clientTrust, onEvent: options.onEvent, publicOrigins };
  const providers = await compileProviders(config, baseDir, providerOptions, report);
  const warnings: string[] = [];
  const assertion = compileAssertion(config, baseDir, (e) => report(e.within(['identity_headers'])), (w) => warnings.push(w));
  const devicesCfg = config.devices;
  const devices = devicesCfg ? (attempt(report, ['devices'], () => compileDevices(devicesCfg, baseDir)) ?? null) : null;
  const risk = (await attemptAsync(report, [], () => compileRisk(config, baseDir, previous?.risk ?? null))) ?? null;
  for (const err of crossKeyProblems(config)) report(err);
  const security = attempt(report, ['security_headers'], () => compileSecurityHeaders(config.security_headers, undefined)) ?? NO_SECURITY_HEADERS;
  const mfa = compileMfa(config.authz.mfa);
  const grants = compileGrants(config, providers.providers, report);
  const routeSecurity = attempt((err) => report(err, true), ['security_headers'], () => compileSecurityHeaders(config.security_headers, undefined, true)) ?? NO_SECURITY_HEADERS;
  const cspKey = cspTokenKey(config.session?.secret);
  const routeContext = { config, baseDir, providers, customNames: customIdentityHeaders(config), mfa, grantNames: new Set(grants.keys()), security, routeSecurity, cspKey, risk, compileValidator };
  const routes = compileRoutes(routeContext, report);
  const cspRoutes = new Map<string, CompiledRoute>();
  for (const r of routes) if (r.cspToken !== null) cspRoutes.set(r.cspToken, r);
  for (const err of spellingConflicts(routes)) report(err);
  const errorPages = attempt(report, [], () => compileErrorPages(config.error_pages?.dir, baseDir, idpOrigins(config))) ?? compileErrorPages(undefined, baseDir, []);
  const grantsAuth = grantsAuthentication(config, providers.providers);
  const tracer = problems.length > 0 ? null : await loadTracer(config.tracing, previous?.tracer);

  if (problems.length > 0) throw ConfigError.of(problems);
  return Object.freeze({
    source: Object.isFrozen(source) ? source : Object.freeze({ ...source }),
    config: freezeData(config),
    mfa,
    routes,
    router: createRouter(routes),
    spelling: createSpellingGuard(routes),
    namesHost: compileNamedHosts(routes),
    trustedProxies,
    publicOrigins,
    tls,
    identityPrefix: config.identity_headers.prefix.toLowerCase(),
    providers: providers.providers,
    assertion,
    rp: providers.rp,
    devices,
    risk,
    security,
    cspRoutes,
    warnings: Object.freeze(warnings),
    grants,
    tracer,
    extAuthz,
    errorPages,
    grantsAuthenticate: grantsAuth.authenticate,
    grantsLoginProvider: grantsAuth.login,
  });
}

/** Origins a sign-out form may end up at (RP-initiated logout redirects to the IdP): the oidc issuers'. */
function idpOrigins(config: Config): string[] {
  const out = new Set<string>();
  for (const p of Object.values(config.identity_providers)) {
    if (p.type !== 'oidc') continue;
    try {
      out.add(new URL(p.issuer).origin);
    } catch {
      // reported by the provider's own compile
    }
  }
  return [...out];
}

function grantsAuthentication(config: Config, providers: ReadonlyMap<string, ProviderEntry>): { authenticate: RouteAuthentication | null; login: string | undefined } {
  const names = new Set<string>();
  for (const g of Object.values(config.grants)) for (const n of g.authenticate ?? Object.keys(config.identity_providers)) names.add(n);
  const list: Authenticator[] = [];
  for (const n of names) {
    const a = providers.get(n)?.authenticator;
    if (a) list.push(a);
  }
  return { authenticate: list.length > 0 ? createRouteAuthentication(list) : null, login: list.find((a) => a.type === 'oidc')?.name };
}
