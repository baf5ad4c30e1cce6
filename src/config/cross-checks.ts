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
  out.push(...overageTokenProblems(config), ...githubStepUpProblems(config));
  return out;
}

/**
 * groups_overage asks the IdP for a Graph-audience access token: the session's token is then a token that reads
 * the directory as the user, never one for the upstream. pass_token would hand it to the upstream.
 */
function overageTokenProblems(config: Config): ConfigError[] {
  const graph = new Set(Object.entries(config.identity_providers).filter(([, p]) => p.type === 'oidc' && p.groups_overage !== undefined).map(([n]) => n));
  if (graph.size === 0) return [];
  const out: ConfigError[] = [];
  config.routes.forEach((r, i) => {
    const name = r.identity_headers?.pass_token === true ? r.authenticate?.find((p) => graph.has(p)) : undefined;
    if (name === undefined) return;
    const message = `provider "${name}" has groups_overage: its sessions hold a Graph-audience access token, which pass_token would give the upstream`;
    out.push(new ConfigError('CFG_CONFLICT', ['routes', i, 'identity_headers', 'pass_token'], message));
  });
  return out;
}

/** GitHub logins carry no acr, amr or auth_time: a step_up on their route could never be met (a login loop). */
function githubStepUpProblems(config: Config): ConfigError[] {
  const out: ConfigError[] = [];
  config.routes.forEach((r, i) => {
    if (r.step_up === undefined) return;
    const name = r.authenticate?.find((p) => config.identity_providers[p]?.type === 'github');
    if (name !== undefined) out.push(new ConfigError('CFG_CONFLICT', ['routes', i, 'step_up'], `provider "${name}" is type github: a GitHub login carries no acr or auth_time, step_up could never be met`));
  });
  return out;
}

/** Who may read /metrics: set explicitly, or admins only whenever the admin listener can authenticate them. */
export function metricsAccess(admin: Config['admin']): 'authenticated' | 'public' {
  if (admin?.metrics !== undefined) return admin.metrics;
  return admin?.token_hash !== undefined || admin?.tls?.client_ca !== undefined ? 'authenticated' : 'public';
}
