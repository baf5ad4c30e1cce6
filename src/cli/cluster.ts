// `start --workers`: validates the config once in the primary (a bad file fails here, with line/col, not
// in N workers), then hands over to the cluster primary.
import { ConfigError, type Config } from '../config/index.ts';
import { runPrimary, loadAndCompile } from '../server/index.ts';
import type { Output } from './validate.ts';

/** A start that failed: config problems one per line (file, key path, line:col), anything else in one line. Exit 1. */
export function startFailure(err: unknown, io: Output): number {
  if (err instanceof ConfigError) for (const line of err.message.split('\n')) io.err(line);
  else io.err(`zt-gateway: cannot start: ${(err as Error).message}`);
  return 1;
}

/** What several workers cannot do (yet) with this config: refused at start rather than silently lost. */
export function clusterProblems(config: Config): string[] {
  const out: string[] = [];
  const oidc = Object.values(config.identity_providers).some((p) => p.type === 'oidc' || p.type === 'github');
  // Cookie sessions are revoked in the memory of the one process that got the logout: the others would
  // keep accepting the session.
  if (oidc && !config.state?.redis && !config.state?.sentinel) {
    out.push('--workers with oidc providers needs state.redis (or state.sentinel): a logout must end the session in every worker');
  }
  // The primary's admin listener serves health, readiness and metrics only, over plain HTTP: admin.token_hash
  // guards its /metrics (the admin API itself is not served, which the primary logs); client certificates cannot.
  if (config.admin?.tls !== undefined) {
    out.push('--workers does not serve admin.tls or the admin API yet: run one process per instance (scale with replicas) or drop admin.tls');
  }
  // Each worker would continue its own chain in the one file: the records would interleave and not verify.
  if (config.log.audit_chain) out.push('--workers cannot write one hash-chained audit file (log.audit_chain): run one process per instance');
  return out;
}

export async function startCluster(configFile: string, workers: number, io: Output): Promise<number> {
  let config;
  try {
    config = (await loadAndCompile(configFile)).config;
  } catch (err) {
    return startFailure(err, io);
  }
  const refused = workers > 1 ? clusterProblems(config) : [];
  if (refused.length > 0) {
    for (const why of refused) io.err(`zt-gateway: ${why}`);
    return 1;
  }
  try {
    return await runPrimary(config, workers);
  } catch (err) {
    return startFailure(err, io);
  }
}
