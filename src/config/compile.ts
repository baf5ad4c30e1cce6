// Compile a validated Config into immutable runtime objects. Runs at load and on reload, never per request.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { resolve } from 'node:path';
import { buildAuthenticator, createRouteAuthentication, providerChecksum, type Authenticator } from '../authn/index.ts';
import { clientTrustChecksum } from '../authn/tls-trust.ts';
import { createRelyingParty, standaloneServices, type RelyingParty, type RpServices } from '../authn/oidc/index.ts';
import { loadDeviceInventory, type DeviceInventory } from '../authz/devices.ts';
import { compilePolicy, PolicyError } from '../authz/policy.ts';
import type { MfaSets } from '../authz/conditions.ts';
import { compileAddressSet, type AddressSet } from '../normalize/cidr.ts';
import { compileCors } from '../response/cors.ts';
import { compileSecurityHeaders, type SecurityHeaderSet } from '../response/security-headers.ts';
import { createAssertionSigner, generatedAssertionKey, loadAssertionKey, type AssertionSigner } from '../proxy/assertion.ts';
import { defaultHeaderNames, type IdentityHeaderNames } from '../proxy/identity-headers.ts';
import { canonicalPath } from '../normalize/target.ts';
import { compileUpstream } from '../proxy/upstream.ts';
import { compileGrants, type CompiledGrant } from '../state/grant-config.ts';
import type { CompiledRoute, HostMatcher } from '../routing/route.ts';
import { createRouter, type Router } from '../routing/router.ts';
import { parseTemplate, type PathTemplate } from '../routing/template.ts';
import { compileRouteValidator } from '../validate/route.ts';
import { compileRisk, RiskConfigError, type RiskSettings } from '../risk/index.ts';
import { HOST_PATTERN } from './checks.ts';
import { ConfigError, formatPath, type ConfigProblem } from './errors.ts';
import type { LoadedConfig } from './load.ts';
import type { Config, RouteConfig } from './schema.ts';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
  readonly crl: string | undefined;
  readonly clientAuth: 'none' | 'optional' | 'require';
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Checksum of ca + crl: which client-verification material this config trusts (authn/tls-trust.ts). */
  readonly clientTrust: string | undefined;
}

export interface CompiledConfig {
  readonly source: LoadedConfig;
  readonly config: Config;
  readonly routes: readonly CompiledRoute[];
  readonly router: Router;
  readonly trustedProxies: AddressSet;
  readonly tls: TlsMaterial | null;
  readonly identityPrefix: string;
  /** What counts as a multi-factor login (authz.mfa), as sets: policy, step-up and metrics read this. */
  readonly mfa: MfaSets;
  readonly providers: ReadonlyMap<string, { checksum: string; authenticator: Authenticator }>;
  readonly assertion: AssertionSigner | null;
  /** The OIDC relying party, when any provider is type oidc. */
  readonly rp: RelyingParty | null;
  readonly devices: { inventory: DeviceInventory; header: string | undefined } | null;
  /** Risk scoring settings (and the GeoIP database); null when nothing uses risk. */
  readonly risk: RiskSettings | null;
  /** Security headers for answers that belong to no route (problems, reserved paths). */
  readonly security: SecurityHeaderSet;
  /** Problems that do not stop the config from loading (e.g. a generated assertion key). */
  readonly warnings: readonly string[];
  /** Just-in-time grants by name. */
  readonly grants: ReadonlyMap<string, CompiledGrant>;
}

export interface CompileOptions {
  /** The running config: unchanged providers (and their JWKS and token caches) are reused. */
  previous?: CompiledConfig;
  /** Connections and caches that outlive reloads (Redis, session revocations). */
  services?: RpServices;
  onEvent?: (event: string, detail: Record<string, unknown>) => void;
}

/** Headers that carry framing, routing, client address or credentials: never an identity header. */
function isReservedHeader(lower: string): boolean {
  return (
    /^(host|connection|keep-alive|te|trailer|transfer-encoding|upgrade|expect|content-length|content-type|content-encoding|authorization|cookie|set-cookie|forwarded|x-request-id|x-real-ip|via)$/.test(lower) ||
    lower.startsWith('x-forwarded-') ||
    lower.startsWith('proxy-') ||
    lower.startsWith('sec-')
  );
}

const NO_SECURITY_HEADERS: SecurityHeaderSet = { flat: [], names: new Set(), keepUpstream: new Set() };

export function compileConfig(source: LoadedConfig, options: CompileOptions = {}): CompiledConfig {
  const { config, file, baseDir, locate } = source;
  const problems: ConfigProblem[] = [];
  const report = (path: PropertyKey[], message: string) =>
    problems.push({ file, path: formatPath(path), message: source.redact?.(formatPath(path), message) ?? message, ...locate(path) });

  let trustedProxies: AddressSet = compileAddressSet([]);
  config.trusted_proxies.forEach((cidr, i) => {
    try {
      compileAddressSet([cidr]);
    } catch (err) {
      report(['trusted_proxies', i], (err as Error).message);
    }
  });
  if (problems.length === 0) trustedProxies = compileAddressSet(config.trusted_proxies);

  let tls: TlsMaterial | null = null;
  if (config.listen.tls) {
    const t = config.listen.tls;
    const read = (key: 'cert' | 'key' | 'client_ca' | 'crl', p: string | undefined) => {
      if (p === undefined) return undefined;
      try {
        return readFileSync(resolve(baseDir, p), 'utf8');
      } catch (err) {
        report(['listen', 'tls', key], `cannot read ${p} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        return undefined;
      }
    };
    const cert = read('cert', t.cert);
    const key = read('key', t.key);
    const ca = read('client_ca', t.client_ca);
    const crl = read('crl', t.crl);
    if (t.crl !== undefined && t.client_ca === undefined) report(['listen', 'tls', 'crl'], 'crl needs listen.tls.client_ca');
    if (t.client_auth !== 'none' && t.client_ca === undefined) {
      report(['listen', 'tls', 'client_auth'], 'client_auth needs listen.tls.client_ca');
    }
    if (cert !== undefined && key !== undefined) {
      try {
        // Parse now, so a bad certificate, key or CRL is a located config error, not a crash at listen().
        createSecureContext({ cert, key, ...(ca ? { ca } : {}), ...(crl ? { crl } : {}) });
        tls = { cert, key, ca, crl, clientAuth: t.client_auth, minVersion: t.min_version, clientTrust: clientTrustChecksum(ca, crl) };
      } catch (err) {
        report(['listen', 'tls'], `TLS material is invalid: ${(err as Error).message}`);
      }
    }
  }

  const warnings: string[] = [];
  const providers = new Map<string, { checksum: string; authenticator: Authenticator }>();
  const broken = new Set<string>(); // already reported: routes naming them get no second error
  let rp: RelyingParty | null = null;
  try {
    rp = createRelyingParty(config, baseDir, options.services ?? standaloneServices(), options.onEvent);
  } catch (err) {
    const path = (err as { path?: PropertyKey[] }).path ?? ['session'];
    report(path, (err as Error).message);
    for (const [name, cfg] of Object.entries(config.identity_providers)) if (cfg.type === 'oidc') broken.add(name);
  }
  for (const [name, cfg] of Object.entries(config.identity_providers)) {
    if (cfg.type === 'oidc') {
      const a = rp?.authenticators.get(name);
      if (a) providers.set(name, { checksum: '', authenticator: a });
      continue;
    }
    // An mtls provider (and its per-connection identity cache) is rebuilt when the client CA or CRL changes.
    const checksum = providerChecksum(cfg, baseDir) + (cfg.type === 'mtls' ? `:${tls?.clientTrust ?? ''}` : '');
    const reused = options.previous?.providers.get(name);
    if (reused && reused.checksum === checksum) {
      providers.set(name, reused);
      continue;
    }
    try {
      const authenticator = buildAuthenticator(name, cfg, {
        baseDir,
        clientCaConfigured: config.listen.tls?.client_ca !== undefined,
        clientTrust: tls?.clientTrust,
        onEvent: options.onEvent ?? (() => undefined),
      });
      providers.set(name, { checksum, authenticator });
    } catch (err) {
      report(['identity_providers', name], (err as Error).message);
      broken.add(name);
    }
  }

  let assertion: AssertionSigner | null = null;
  const ih = config.identity_headers;
  if (ih.assertion || config.routes.some((r) => r.identity_headers.assertion === true)) {
    try {
      let key;
      if (ih.assertion_key !== undefined) key = loadAssertionKey(readFileSync(resolve(baseDir, ih.assertion_key), 'utf8'));
      else {
        key = generatedAssertionKey();
        warnings.push('identity_headers.assertion_key is not set: using a key generated at start (upstreams must refetch the JWKS after a restart)');
      }
      assertion = createAssertionSigner(key, ih.issuer, Math.min(60, Math.max(1, Math.round(ih.assertion_ttl / 1000))));
    } catch (err) {
      report(['identity_headers', 'assertion_key'], (err as Error).message);
    }
  }
  if (ih.assertion_ttl > 60_000) report(['identity_headers', 'assertion_ttl'], 'assertion_ttl may be at most 60s');

  let devices: CompiledConfig['devices'] = null;
  if (config.devices) {
    try {
      devices = { inventory: loadDeviceInventory(resolve(baseDir, config.devices.inventory)), header: config.devices.header?.toLowerCase() };
    } catch (err) {
      report(['devices', 'inventory'], (err as Error).message);
    }
  }
  let risk: RiskSettings | null = null;
  try {
    risk = compileRisk(config, baseDir, options.previous?.risk ?? null);
  } catch (err) {
    if (!(err instanceof RiskConfigError)) throw err;
    report(err.path, err.message);
  }
  if (config.log.audit_chain && config.log.audit === 'stdout') report(['log', 'audit_chain'], 'audit_chain needs log.audit to be a file path');
  if (config.rate_limits.pre_auth && config.rate_limits.pre_auth.per !== 'ip') {
    report(['rate_limits', 'pre_auth', 'per'], 'pre_auth limits run before authentication: per must be ip');
  }
  let globalSecurity: SecurityHeaderSet = NO_SECURITY_HEADERS;
  try {
    globalSecurity = compileSecurityHeaders(config.security_headers, undefined);
  } catch (err) {
    report(['security_headers'], (err as Error).message);
  }
  const mfa = { amr: new Set(config.authz.mfa.amr), acr: new Set(config.authz.mfa.acr) };
  const grants = compileGrants(config, providers, report);
  const grantNames = new Set(grants.keys());

  const names = new Set<string>();
  const routes: CompiledRoute[] = [];
  const prefix = config.identity_headers.prefix;
  const customNames = new Set<string>();
  for (const r of config.routes) {
    for (const n of [r.identity_headers.user, r.identity_headers.email, r.identity_headers.groups, r.identity_headers.method, r.identity_headers.spiffe_id]) {
      if (n !== undefined && !n.toLowerCase().startsWith(prefix.toLowerCase())) customNames.add(n.toLowerCase());
    }
  }
  config.routes.forEach((r, index) => {
    if (names.has(r.name)) report(['routes', index, 'name'], `duplicate route name "${r.name}"`);
    names.add(r.name);
    const at = (path: PropertyKey[], msg: string) => report(['routes', index, ...path], msg);
    const route = compileRoute(r, index, baseDir, at);
    if (!route) return;
    const auth = compileRouteAuth(r, providers, broken, customNames, prefix, ih.assertion, at);
    let policy: CompiledRoute['policy'] = null;
    if (r.authorize !== undefined) {
      try {
        policy = compilePolicy(r.authorize, { routePath: route.path, mfa, grants: grantNames, routeParams: route.template?.names ?? [] });
        if (policy.allowRules === 0) at(['authorize', 'allow'], 'at least one allow rule is needed (nothing would ever be allowed)');
      } catch (err) {
        if (err instanceof PolicyError) at(['authorize', ...err.path.filter((k) => k !== '')], err.message);
        else throw err;
      }
    } else if (r.authenticate !== undefined) {
      at(['authenticate'], 'a route with authenticate needs authorize (allow: [{ authenticated: true }] means any verified identity)');
    }
    const usesDevice = [...(r.authorize?.allow ?? []), ...(r.authorize?.deny ?? [])].some((rule) => rule.device !== undefined);
    if (usesDevice && !config.devices) at(['authorize'], 'the device condition needs devices.inventory');
    let security = globalSecurity;
    try {
      if (r.security_headers) security = compileSecurityHeaders(config.security_headers, r.security_headers);
    } catch (err) {
      at(['security_headers'], (err as Error).message);
    }
    const cors = r.cors ? compileCors(r.cors) : null;
    const validator = r.validate ? compileRouteValidator(r.validate, route, r.mode, baseDir, at, problems) : null;
    const riskRule = (r.authorize?.deny ?? []).some((rule) => rule.risk_above !== undefined);
    if (r.public && (riskRule || r.step_up?.when)) at(['public'], 'risk_above needs an authenticated route (there is no subject to score)');
    const scoresRisk = !r.public && risk !== null && (riskRule || r.step_up?.when !== undefined || risk.allRoutes);
    if (auth) routes.push({ ...route, ...auth, policy, mode: r.mode, security, cors, onStateError: r.on_state_error, validator, scoresRisk });
  });

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    source,
    config,
    mfa,
    routes,
    router: createRouter(routes),
    trustedProxies,
    tls,
    identityPrefix: config.identity_headers.prefix.toLowerCase(),
    providers,
    assertion,
    rp,
    devices,
    risk,
    security: globalSecurity,
    warnings,
    grants,
  };
}

type RouteAuthPart = Pick<
  CompiledRoute,
  'authenticate' | 'providerNames' | 'identityHeaders' | 'assertion' | 'dropHeaders' | 'passToken' | 'loginProviders' | 'stepUp'
>;

function compileRouteAuth(
  r: RouteConfig,
  providers: ReadonlyMap<string, { authenticator: Authenticator }>,
  broken: ReadonlySet<string>,
  customNames: ReadonlySet<string>,
  prefix: string,
  assertionDefault: boolean,
  report: (path: PropertyKey[], message: string) => void,
): RouteAuthPart | undefined {
  let ok = true;
  if (r.public && r.authenticate !== undefined) {
    report(['public'], 'a public route cannot also list authenticate (public skips authentication)');
    ok = false;
  }
  const list: Authenticator[] = [];
  (r.authenticate ?? []).forEach((name, i) => {
    const p = providers.get(name);
    if (p === undefined) {
      if (!broken.has(name)) report(['authenticate', i], `unknown identity provider "${name}"`);
      ok = false;
    } else list.push(p.authenticator);
  });
  const defaults = defaultHeaderNames(prefix);
  const h = r.identity_headers;
  const identityHeaders: IdentityHeaderNames = {
    user: h.user ?? defaults.user,
    email: h.email ?? defaults.email,
    groups: h.groups ?? defaults.groups,
    method: h.method ?? defaults.method,
    spiffeId: h.spiffe_id ?? defaults.spiffeId,
    assertion: defaults.assertion,
  };
  // Custom names outside the prefix are not covered by the normalize strip: every route drops every
  // route's custom names (a client must not reach the same upstream with them through a public route).
  const drop = new Set<string>(customNames);
  const seen = new Map<string, string>();
  for (const [field, name] of Object.entries(identityHeaders)) {
    const lower = name.toLowerCase();
    if (isReservedHeader(lower)) {
      report(['identity_headers', field === 'spiffeId' ? 'spiffe_id' : field], `"${name}" is a reserved header and cannot carry identity`);
      ok = false;
    }
    const other = seen.get(lower);
    if (other !== undefined) {
      report(['identity_headers', field === 'spiffeId' ? 'spiffe_id' : field], `"${name}" is already used for ${other}`);
      ok = false;
    }
    seen.set(lower, field);
  }
  if (list.length > 0 && !h.pass_token) for (const p of list) for (const c of p.consumes) drop.add(c);
  if (list.length > 0 && h.pass_token) for (const p of list) for (const c of p.consumes) if (c !== 'authorization') drop.add(c);
  // Every caller is held to step_up (browsers are sent to log in again, others get a 401): a route whose
  // providers can never carry acr/auth_time (only API keys or certificates) could never be passed.
  if (r.step_up && r.step_up.when === undefined && !list.some((p) => p.type === 'oidc' || p.type === 'jwt')) {
    report(['step_up'], 'step_up needs an oidc or jwt provider in authenticate (API keys and certificates carry no acr or auth_time)');
    ok = false;
  }
  if (!ok) return undefined;
  return {
    authenticate: list.length > 0 ? createRouteAuthentication(list) : null,
    providerNames: list.map((p) => p.name),
    identityHeaders,
    assertion: h.assertion ?? assertionDefault,
    dropHeaders: drop,
    passToken: h.pass_token,
    loginProviders: list.filter((p) => p.type === 'oidc').map((p) => p.name),
    stepUp: r.step_up
      ? {
          acr: r.step_up.acr ?? (r.step_up.when ? 'mfa' : undefined),
          maxAgeS: r.step_up.max_age === undefined ? undefined : Math.round(r.step_up.max_age / 1000),
          riskAbove: r.step_up.when?.risk_above,
        }
      : null,
  };
}

function compileRoute(
  r: RouteConfig,
  index: number,
  baseDir: string,
  report: (path: PropertyKey[], message: string) => void,
): CompiledRoute | undefined {
  let ok = true;
  const fail = (path: PropertyKey[], message: string) => {
    ok = false;
    report(path, message);
  };

  let hosts: HostMatcher | null = null;
  if (r.match.host !== undefined) {
    const list = Array.isArray(r.match.host) ? r.match.host : [r.match.host];
    const exact: string[] = [];
    const wildcard: string[] = [];
    list.forEach((h, i) => {
      const lower = h.toLowerCase().replace(/\.$/, '');
      const path = Array.isArray(r.match.host) ? ['match', 'host', i] : ['match', 'host'];
      if (!HOST_PATTERN.test(lower)) fail(path, `invalid host pattern "${h}" (exact name or *.example.com)`);
      else if (lower.startsWith('*.')) wildcard.push(lower.slice(1));
      else exact.push(lower);
    });
    hosts = { exact, wildcard };
  }

  let path = '';
  let exact = false;
  let template: PathTemplate | null = null;
  const rawPath = r.match.path.startsWith('=') ? ((exact = true), r.match.path.slice(1)) : r.match.path;
  try {
    const canonical = canonicalPath(rawPath);
    if (canonical.path !== canonical.matchPath) throw new Error('route paths may not contain ;parameters');
    path = exact ? canonical.path : canonical.path.replace(/\/$/, '');
    template = parseTemplate(path) ?? null;
  } catch (err) {
    fail(['match', 'path'], `invalid path: ${(err as { detail?: string }).detail ?? (err as Error).message}`);
  }

  let upstream;
  try {
    upstream = compileUpstream(r.upstream, baseDir);
  } catch (err) {
    const message = (err as Error).message;
    fail(['upstream', /upstream\.tls|cannot read/.test(message) ? 'tls' : 'url'], message);
  }

  if (!ok || upstream === undefined) return undefined;
  return {
    authenticate: null,
    providerNames: [],
    identityHeaders: defaultHeaderNames('X-ZT-'),
    assertion: false,
    dropHeaders: new Set<string>(),
    passToken: false,
    loginProviders: [],
    stepUp: null,
    policy: null,
    mode: r.mode,
    security: NO_SECURITY_HEADERS,
    cors: null,
    onStateError: r.on_state_error,
    index,
    name: r.name,
    hosts,
    path,
    exact,
    template,
    validator: null,
    methods: r.match.methods ? new Set(r.match.methods) : null,
    upstream,
    public: r.public,
    websocket: r.websocket,
  };
}
