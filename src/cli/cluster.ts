// `start --workers`: validates the config once in the primary (a bad file fails here, with line/col, not
// in N workers), then hands over to the cluster primary.
import { ConfigError } from '../config/errors.ts';
import { runPrimary } from '../server/cluster.ts';
import { loadAndCompile } from '../server/gateway.ts';
import type { Output } from './validate.ts';

export async function startCluster(configFile: string, workers: number, io: Output): Promise<number> {
  let config;
  try {
    config = loadAndCompile(configFile).config;
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) io.err(line);
      return 1;
    }
    io.err(`zt-gateway: cannot start: ${(err as Error).message}`);
    return 1;
  }
  try {
    return await runPrimary(config, workers);
  } catch (err) {
    io.err(`zt-gateway: cannot start: ${(err as Error).message}`);
    return 1;
  }
}
