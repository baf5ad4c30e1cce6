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
  return out;
}
