// Settings that hold each on their own but not together: checked after the schema, reported from the root.
import { ConfigError } from './errors.ts';
import type { Config } from './schema.ts';

/** Settings that hold each on their own but not together (checked after the schema, path from the root). */
export function crossKeyProblems(config: Config): ConfigError[] {
  const out: ConfigError[] = [];
  if (config.log.audit_chain && config.log.audit === 'stdout') {
    out.push(new ConfigError('CFG_CONFLICT', ['log', 'audit_chain'], 'audit_chain needs log.audit to be a file path'));
  }
  if (config.rate_limits.pre_auth && config.rate_limits.pre_auth.per !== 'ip') {
    out.push(new ConfigError('CFG_CONFLICT', ['rate_limits', 'pre_auth', 'per'], 'pre_auth limits run before authentication: per must be ip'));
  }
  if (config.admin?.metrics === 'authenticated' && config.admin.token_hash === undefined && config.admin.tls?.client_ca === undefined) {
    out.push(new ConfigError('CFG_CONFLICT', ['admin', 'metrics'], 'metrics: authenticated needs admin.token_hash or admin.tls.client_ca (nobody could scrape)'));
  }
  if (config.ext_authz && config.ext_authz.tls?.client_ca === undefined && config.trusted_proxies.length === 0) {
    out.push(new ConfigError('CFG_CONFLICT', ['ext_authz'], 'ext_authz answers only trusted_proxies or callers with a client certificate: set trusted_proxies or ext_authz.tls.client_ca (nobody could ask)'));
  }
  const taken = [config.listen.address, config.admin?.listen, config.listen.redirect_http].filter((a) => a !== undefined && !a.endsWith(':0'));
  if (config.ext_authz && taken.includes(config.ext_authz.listen)) {
    out.push(new ConfigError('CFG_CONFLICT', ['ext_authz', 'listen'], 'ext_authz needs an address of its own (another listener uses this one)'));
  }
  if (config.login && !Object.values(config.identity_providers).some((p) => p.type === 'oidc')) {
    out.push(new ConfigError('CFG_CONFLICT', ['login'], 'login.host is where oidc logins happen: it needs an identity provider of type oidc'));
  }
  return out;
}

/** Who may read /metrics: set explicitly, or admins only whenever the admin listener can authenticate them. */
export function metricsAccess(admin: Config['admin']): 'authenticated' | 'public' {
  if (admin?.metrics !== undefined) return admin.metrics;
  return admin?.token_hash !== undefined || admin?.tls?.client_ca !== undefined ? 'authenticated' : 'public';
}
