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
  try {
    return await runPrimary(loadAndCompile(configFile).config, workers);
  } catch (err) {
    return startFailure(err, io);
  }
}
