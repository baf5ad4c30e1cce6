// The posture checks: a validated config in, findings out. They read the config only (no network, no files):
// what the IdP issues, how devices are managed or who can reach the app is outside what they can see.
import { isIP } from 'node:net';
import { formatPath, metricsAccess, type LoadedConfig, type Config, type RouteConfig, type RuleConfig, type SecurityHeadersConfig } from '../../config/index.ts';
import { FINDINGS, type Finding, type FindingId, type Severity } from './catalog.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Methods that do not change state; a public route limited to these is read-only. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Rule conditions that narrow who is let in (least privilege); the others only narrow how or when. */
const IDENTITY_CONDITIONS = ['subject', 'email', 'email_domain', 'groups', 'all_groups', 'claims', 'spiffe_id', 'service_callers'] as const;
/**
 * Audience values that do not bind a token to one relying party: Keycloak puts `account` into every access
 * token, and the rest are what a misconfigured IdP or a copy-pasted example tends to carry.
 */
const GENERIC_AUDIENCES = new Set(['*', 'account', 'all', 'any', 'api', 'default', 'public', 'everyone']);

type Emit = (id: FindingId, severity: Severity, path: PropertyKey[], message: string, fix: string, about?: { route?: string; provider?: string }) => void;

export function postureFindings(loaded: LoadedConfig): Finding[] {
  const { config } = loaded;
  const findings: Finding[] = [];
  const emit: Emit = (id, severity, path, message, fix, about = {}) => {
    const line = loaded.locate(path).line;
    findings.push({ id, severity, tenets: FINDINGS[id].tenets, path: formatPath(path), ...(line !== undefined ? { line } : {}), ...about, message, fix });
  };
  checkListener(config, emit);
  checkExtAuthz(config, emit);
  checkProviders(config, emit);
  checkSession(config, emit);
  checkGlobal(config, emit);
  config.routes.forEach((route, index) => checkRoute(config, route, index, emit));
  return findings;
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host.startsWith('::ffff:127.');
}

function checkListener(config: Config, emit: Emit): void {
  if (config.listen.plaintext) {
    emit('listen-plaintext', 'medium', ['listen', 'plaintext'], 'the main listener serves plain HTTP: tokens and cookies are protected only by whatever sits in front',
      'use listen.tls, or keep plaintext only behind a mesh that terminates (m)TLS in the same pod');
  }
  if (!config.admin) {
    emit('admin-missing', 'low', [], 'no admin listener: no /healthz, /readyz or /metrics', 'add admin: { listen: 127.0.0.1:9090 } (0.0.0.0:9090 for kubelet probes, behind a NetworkPolicy)');
  } else if (!isLoopbackHost(config.admin.listen.replace(/:\d+$/, ''))) {
    // The admin API never runs without credentials (no token_hash and no client_ca: it is off), so what can be
    // open is /metrics: route names, deny reasons and traffic per route for anyone on the network.
    if (metricsAccess(config.admin) === 'public') {
      emit('admin-exposed', 'high', ['admin', 'listen'], `the admin listener (${config.admin.listen}) is reachable from the network and serves /metrics without authentication: route names and deny reasons for anyone`,
        'set admin.token_hash (Prometheus scrapes with the token as a bearer credential) or admin.tls.client_ca, or keep the listener on loopback');
    } else {
      emit('admin-exposed', 'low', ['admin', 'listen'], `the admin listener (${config.admin.listen}) is reachable from the network (its /metrics and API need the admin credentials)`,
        'keep it on loopback, or admit only the kubelet and your Prometheus with a NetworkPolicy');
    }
  }
  const i = config.trusted_proxies.findIndex((c) => /\/0$/.test(c.trim()));
  if (i >= 0) {
    emit('trusted-proxies-any', 'high', ['trusted_proxies', i], 'X-Forwarded-For is believed from any address: a client picks its own IP, defeating per-IP limits and source_ip rules',
      'list only the load balancer or ingress addresses in trusted_proxies');
  }
}

/**
 * The ext_authz gRPC listener answers trusted_proxies and callers with a client certificate from tls.client_ca
 * (the config is refused when neither is set). Off loopback, a trusted_proxies that admits every address is no
 * guard: any host that reaches the port can probe the policy with stolen or guessed credentials.
 */
function checkExtAuthz(config: Config, emit: Emit): void {
  const e = config.ext_authz;
  if (!e || isLoopbackHost(e.listen.replace(/:\d+$/, ''))) return;
  const anyAddress = config.trusted_proxies.some((c) => /\/0$/.test(c.trim()));
  if (e.tls?.client_ca === undefined && anyAddress) {
    emit('ext-authz-unguarded', 'high', ['ext_authz', 'listen'], `the ext_authz listener (${e.listen}) is reachable from the network and answers any address (trusted_proxies admits all, no client_ca)`,
      'set ext_authz.tls.client_ca and give Envoy a client certificate, or list only the Envoy addresses in trusted_proxies');
  }
  if (e.tls === undefined) {
    emit('ext-authz-plaintext', 'medium', ['ext_authz', 'listen'], `the ext_authz listener (${e.listen}) is off loopback without TLS: Authorization and Cookie of every checked request cross the network in clear`,
      'set ext_authz.tls (and client_ca for mTLS), or keep the listener on loopback next to Envoy');
  }
}

function checkProviders(config: Config, emit: Emit): void {
  const byIssuer = new Map<string, { name: string; audiences: readonly string[] }[]>();
  for (const [name, p] of Object.entries(config.identity_providers)) {
    if (p.type !== 'jwt') continue;
    const at = ['identity_providers', name];
    const about = { provider: name };
    // The schema requires audiences (at least one), so "no audience" cannot be configured; an audience that
    // every token of the issuer carries is the same hole.
    const issuer = p.issuer.replace(/\/$/, '');
    const unbound = p.audiences.filter((a) => GENERIC_AUDIENCES.has(a.toLowerCase()) || a.replace(/\/$/, '') === issuer || a.startsWith(`${issuer}/userinfo`));
    if (unbound.length > 0) {
      emit('jwt-audience-unbound', 'high', [...at, 'audiences'], `accepts audience ${unbound.map((a) => JSON.stringify(a)).join(', ')}, which tokens for other applications carry too`,
        'have the IdP issue tokens for this gateway (a dedicated audience such as the app name) and accept only that', about);
    }
    if (p.max_token_age === undefined) {
      emit('jwt-token-age-unbounded', 'medium', at, 'no max_token_age: a token is accepted for as long as the issuer made it valid (exp)',
        'set max_token_age (e.g. 1h): tokens older than that are refused whatever their exp', about);
    } else if (p.max_token_age > 12 * HOUR) {
      emit('jwt-token-age-long', 'medium', [...at, 'max_token_age'], `max_token_age is ${hours(p.max_token_age)}: a stolen token stays useful that long`, 'lower max_token_age to 1h or less', about);
    }
    if (p.clock_tolerance > 60_000) {
      emit('jwt-clock-tolerance-large', p.clock_tolerance > 5 * 60_000 ? 'high' : 'medium', [...at, 'clock_tolerance'],
        `clock_tolerance is ${Math.round(p.clock_tolerance / 1000)} s: expired tokens are accepted that much longer`, 'keep clocks in sync (NTP) and clock_tolerance at 30s or less', about);
    }
    const list = byIssuer.get(issuer) ?? [];
    const shared = list.find((o) => o.audiences.some((a) => p.audiences.includes(a)));
    if (shared) {
      emit('jwt-audience-shared', 'medium', [...at, 'audiences'], `accepts the same audience as provider "${shared.name}" of the same issuer: tokens meant for one work on the other's routes`,
        'give each application its own audience', about);
    }
    list.push({ name, audiences: p.audiences });
    byIssuer.set(issuer, list);
  }
}

function checkSession(config: Config, emit: Emit): void {
  const s = config.session;
  if (!s) return;
  if (s.ttl > 12 * HOUR) {
    emit('session-ttl-long', s.ttl > DAY ? 'high' : 'medium', ['session', 'ttl'], `sessions last ${hours(s.ttl)} before the user must log in again`,
      'set session.ttl to 8h–12h (a working day); step_up.max_age for sensitive routes');
  }
  if (s.idle_timeout > HOUR) {
    emit('session-idle-long', 'medium', ['session', 'idle_timeout'], `an unused session stays valid for ${hours(s.idle_timeout)}`, 'set session.idle_timeout to 30m–1h');
  }
}

function checkGlobal(config: Config, emit: Emit): void {
  checkHsts(config.security_headers, ['security_headers', 'hsts'], emit);
  if (!config.rate_limits.pre_auth) {
    emit('rate-limit-pre-auth-missing', 'medium', ['rate_limits'], 'no per-IP limit runs before authentication: token and key guessing is unthrottled',
      'add rate_limits.pre_auth: { per: ip, limit: 300, window: 1m }');
  }
  if (!config.rate_limits.auth_failures) {
    emit('auth-failures-missing', 'low', ['rate_limits'], 'no brute-force lockout after repeated authentication failures',
      'add rate_limits.auth_failures: { limit: 10, window: 5m, block: 15m }');
  }
  const routesAssert = config.routes.some((r) => r.identity_headers.assertion === true);
  if (!config.identity_headers.assertion && !routesAssert && config.routes.some((r) => !r.public)) {
    emit('identity-assertion-off', 'low', ['identity_headers', 'assertion'], 'no signed X-ZT-Assertion: the app must trust identity headers on the network path alone',
      'set identity_headers.assertion: true and let the app verify the JWT against /.well-known/zt-gateway/jwks.json');
  }
  const rules = config.routes.flatMap((r) => [...(r.authorize?.allow ?? []), ...(r.authorize?.deny ?? [])]);
  if (!rules.some((r) => r.device !== undefined)) {
    emit('device-posture-unused', 'info', [], 'no rule looks at the device: access does not depend on the state of the requesting asset',
      'keep a devices.inventory and require device: known (or trusted) on sensitive routes');
  }
  if (!config.log.access) emit('access-log-off', 'medium', ['log', 'access'], 'access records are off: requests leave no trace besides decisions', 'set log.access: true');
  if (['silent', 'fatal', 'error'].includes(config.log.level)) {
    emit('log-level-quiet', 'medium', ['log', 'level'], `log.level ${config.log.level} drops warnings and info records`, 'use log.level: info');
  }
}

function checkHsts(headers: SecurityHeadersConfig | undefined, path: PropertyKey[], emit: Emit, route?: string): void {
  const hsts = headers?.hsts;
  const about = route === undefined ? {} : { route };
  if (hsts === false) {
    emit('hsts-missing', 'medium', path, 'Strict-Transport-Security is turned off: a browser may be downgraded to http:// on its next visit',
      'remove hsts: false (the default is max_age 365d with includeSubDomains)', about);
  } else if (hsts !== undefined && hsts.max_age < 180 * DAY) {
    emit('hsts-weak', 'low', [...path, 'max_age'], `HSTS max_age is ${Math.round(hsts.max_age / DAY)} days`, 'use at least 180 days (365d is the default)', about);
  }
}

function checkRoute(config: Config, r: RouteConfig, index: number, emit: Emit): void {
  const at = (...path: PropertyKey[]) => ['routes', index, ...path];
  const about = { route: r.name };
  if (r.public) {
    const methods = r.match.methods;
    if (methods === undefined || methods.some((m) => !SAFE_METHODS.has(m))) {
      emit('route-public-writable', 'medium', at('public'), `public route accepts ${methods ? methods.filter((m) => !SAFE_METHODS.has(m)).join(', ') : 'every method'} without authentication`,
        'limit public routes to match.methods: [GET, HEAD], or authenticate', about);
    } else {
      emit('route-public', 'low', at('public'), 'public route: no authentication (audited as public)', 'keep public routes to static assets; everything else authenticates', about);
    }
  }
  if (r.mode === 'report-only') {
    emit('route-report-only', 'high', at('mode'), 'report-only: the policy decides and audits, but every request is forwarded, denied or not',
      'switch to mode: enforce once the audit log shows no unexpected denials', about);
  }
  checkMfa(config, r, index, emit);
  checkGroupsFilter(config, r, index, emit);
  (r.authorize?.allow ?? []).forEach((rule, i) => {
    if (!IDENTITY_CONDITIONS.some((k) => rule[k] !== undefined)) {
      emit('route-any-identity', 'medium', at('authorize', 'allow', i), `allow rule ${ruleName(rule, i)} admits any verified identity of the route's providers`,
        'name who may call: groups, subject, email_domain, claims or service_callers', about);
    }
  });
  if (!r.rate_limit) {
    emit('route-no-rate-limit', 'low', at(), 'no per-route rate_limit: one caller can use the whole upstream', 'add rate_limit: { per: subject, limit: 100, window: 1m } (per: ip on public routes)', about);
  }
  // Each endpoint is checked as the one `url` is.
  const urls = r.upstream.endpoints ?? (r.upstream.url === undefined ? [] : [r.upstream.url]);
  urls.forEach((text, i) => {
    const url = new URL(text);
    const key: (string | number)[] = r.upstream.endpoints ? ['upstream', 'endpoints', i] : ['upstream', 'url'];
    if (url.protocol === 'http:') {
      if (isLoopbackHost(url.hostname)) {
        emit('upstream-plaintext-loopback', 'info', at(...key), `plain HTTP to ${url.host} on loopback`, 'make sure the app listens on 127.0.0.1 only (sidecar)', about);
      } else {
        emit('upstream-plaintext', 'high', at(...key), `plain HTTP to ${url.host}: identity headers and data cross the network unencrypted, and anyone on it can reach the app directly`,
          'use https:// with upstream.tls { ca, cert, key } (mTLS), or run the gateway as a sidecar with the app on 127.0.0.1', about);
      }
    } else if (r.upstream.tls?.cert === undefined) {
      emit('upstream-no-mtls', 'low', at('upstream'), `TLS to ${url.host} without a client certificate: the app cannot tell the gateway from any other caller`,
        'set upstream.tls.cert and key, and have the app require them', about);
    }
  });
  for (const [i, origin] of (r.cors?.origins ?? []).entries()) {
    const o = new URL(origin);
    if (o.protocol !== 'http:' || isLoopbackHost(o.hostname)) continue;
    const credentials = r.cors?.credentials === true;
    emit('cors-insecure-origin', credentials ? 'high' : 'medium', at('cors', 'origins', i),
      `CORS trusts ${origin} over plain HTTP${credentials ? ' with credentials: anyone on that network path can be that origin and read authenticated answers' : ''}`,
      'list https:// origins only', about);
  }
  const cookieSession = (r.authenticate ?? []).some((n) => ['oidc', 'github'].includes(config.identity_providers[n]?.type ?? ''));
  if (!r.cross_origin.protect && cookieSession) {
    emit('cross-origin-unprotected', 'high', at('cross_origin', 'protect'),
      'cross_origin.protect: false: a page of any other origin can send POST/PUT/DELETE and open WebSockets with the user\'s session cookie',
      'remove protect: false; list the origins that may call in cross_origin.allow instead', about);
  }
  checkHsts(r.security_headers, at('security_headers', 'hsts'), emit, r.name);
  checkCspReportOnly(config, r, index, emit);
}

/** The route's effective csp (a route's csp is merged over the top-level one): report-only unless report_only: false. */
function checkCspReportOnly(config: Config, r: RouteConfig, index: number, emit: Emit): void {
  const own = r.security_headers?.csp;
  const global = config.security_headers.csp;
  if (own === false || (own === undefined && global === false)) return;
  const reportOnly = (own?.report_only ?? (global === false ? undefined : global?.report_only)) ?? true;
  if (!reportOnly) return;
  const path = own?.report_only !== undefined ? ['routes', index, 'security_headers', 'csp', 'report_only']
    : global !== false && global?.report_only !== undefined ? ['security_headers', 'csp', 'report_only'] : ['routes', index];
  emit('csp-report-only', 'medium', path,
    'the Content-Security-Policy is report-only: injected scripts run; violations are only reported (GET /admin/v1/csp-violations)',
    `run \`zt-gateway csp suggest --route ${r.name}\`, add its directives under the route, then set security_headers.csp.report_only: false`, { route: r.name });
}

/** A user route (oidc or jwt provider) whose allow rules let someone in without MFA. */
/** A groups list cut at max: an app that denies on a group (deny if member of X) may not see X. */
function checkGroupsFilter(config: Config, r: RouteConfig, index: number, emit: Emit): void {
  if (r.public) return;
  const own = r.identity_headers.groups_filter;
  const max = (own ?? config.identity_headers.groups_filter)?.max;
  if (max === undefined) return;
  const path = own !== undefined ? ['routes', index, 'identity_headers', 'groups_filter', 'max'] : ['identity_headers', 'groups_filter', 'max'];
  emit('groups-filter-truncates', 'medium', path,
    `the upstream gets at most ${max} groups (Groups-Truncated: true past that): a cut group could be one the app denies on`,
    'narrow groups_filter.include to the groups the app reads (and raise max), or deny in the gateway\'s policy, which sees every group', { route: r.name });
}

function checkMfa(config: Config, r: RouteConfig, index: number, emit: Emit): void {
  if (r.public || r.step_up?.acr !== undefined) return;
  const human = (r.authenticate ?? []).some((n) => ['oidc', 'jwt', 'github'].includes(config.identity_providers[n]?.type ?? ''));
  if (!human) return;
  (r.authorize?.allow ?? []).forEach((rule, i) => {
    if (rule.mfa === true || isServiceOnly(rule)) return;
    emit('route-no-mfa', 'medium', ['routes', index, 'authorize', 'allow', i], `allow rule ${ruleName(rule, i)} admits a login or token without multi-factor authentication`,
      'add mfa: true to the rule (or step_up: { acr: mfa } on an OIDC route)', { route: r.name });
  });
}

/** Rules that only admit workloads (mTLS/API keys/SPIFFE callers) have no user to ask for a second factor. */
function isServiceOnly(rule: RuleConfig): boolean {
  if (rule.service_callers !== undefined || rule.spiffe_id !== undefined) return true;
  if (rule.method === undefined) return false;
  const methods = Array.isArray(rule.method) ? rule.method : [rule.method];
  return methods.every((m) => m === 'mtls' || m === 'api_key');
}

const ruleName = (rule: RuleConfig, i: number) => (rule.name ? `"${rule.name}"` : `#${i}`);
const hours = (ms: number) => (ms % HOUR === 0 ? `${ms / HOUR} h` : `${Math.round(ms / 60_000)} min`);
