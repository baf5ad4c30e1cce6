// `start --workers`: validates the config once in the primary (a bad file fails here, with line/col, not
// in N workers), then hands over to the cluster primary.
import { ConfigError } from '../config/errors.ts';
import { runPrimary } from '../server/cluster.ts';
import { loadAndCompile } from '../server/gateway.ts';
import type { Output } from './validate.ts';

/** A start that failed: config problems one per line (file, key path, line:col), anything else in one line. Exit 1. */
export function startFailure(err: unknown, io: Output): number {
  if (err instanceof ConfigError) for (const line of err.message.split('\n')) io.err(line);
  else io.err(`zt-gateway: cannot start: ${(err as Error).message}`);
  return 1;
}

export async function startCluster(configFile: string, workers: number, io: Output): Promise<number> {
  let config;
  try {
    config = loadAndCompile(configFile).config;
  } catch (err) {
    return startFailure(err, io);
  }
  const oidc = Object.values(config.identity_providers).some((p) => p.type === 'oidc');
  if (workers > 1 && oidc && !config.state?.redis && !config.state?.sentinel) {
    // Cookie sessions are revoked in the memory of the one process that got the logout: the others would
    // keep accepting the session. Refused rather than warned.
    io.err('zt-gateway: --workers with oidc providers needs state.redis (or state.sentinel): a logout must end the session in every worker');
    return 1;
  }
  try {
    return await runPrimary(config, workers);
  } catch (err) {
    return startFailure(err, io);
  }
}
