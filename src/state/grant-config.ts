// The grants section compiled at load: approver groups as sets, durations in ms, and the authentication
// that /.zt/grants uses for each grant (its own provider list, or every configured provider).
import { createRouteAuthentication, type Authenticator, type RouteAuthentication } from '../authn/index.ts';
import { ConfigError, type ConfigReport, type Config } from '../config/index.ts';

export interface CompiledGrant {
  readonly name: string;
  readonly approvers: ReadonlySet<string>;
  readonly maxDurationMs: number;
  readonly requestTtlMs: number;
  readonly authenticate: RouteAuthentication | null;
}

/** Grants by name (each frozen; the Map is never changed after compile). Reports with `path` from the config root. */
export function compileGrants(
  config: Config,
  providers: ReadonlyMap<string, { authenticator: Authenticator }>,
  report: ConfigReport,
): ReadonlyMap<string, CompiledGrant> {
  const out = new Map<string, CompiledGrant>();
  for (const [name, g] of Object.entries(config.grants)) {
    const names = g.authenticate ?? Object.keys(config.identity_providers);
    const list: Authenticator[] = [];
    names.forEach((p, i) => {
      const a = providers.get(p)?.authenticator;
      if (a) list.push(a);
      else if (g.authenticate !== undefined && !Object.hasOwn(config.identity_providers, p)) report(new ConfigError('CFG_UNKNOWN_NAME', ['grants', name, 'authenticate', i], `unknown identity provider "${p}"`));
    });
    if (g.max_duration <= 0) report(new ConfigError('CFG_BAD_VALUE', ['grants', name, 'max_duration'], 'max_duration must be more than 0'));
    out.set(name, Object.freeze({
      name,
      approvers: new Set(g.approvers),
      maxDurationMs: g.max_duration,
      requestTtlMs: g.request_ttl,
      authenticate: list.length > 0 ? createRouteAuthentication(list) : null,
    }));
  }
  return out;
}
