// `zt-gateway validate <file>`: every error with file:line:col, and warnings for shadowed routes.
import { compileConfig } from '../pipeline/index.ts';
import { ConfigError, loadConfigFile } from '../config/index.ts';
import { findCaseShadowed, findShadowed } from '../routing/index.ts';

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

export async function validateCommand(file: string, io: Output, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const loaded = loadConfigFile(file, env);
    const compiled = await compileConfig(loaded);
    const at = (index: number) => {
      const pos = loaded.locate(['routes', index]);
      return pos.line ? ` (line ${pos.line}:${pos.col})` : '';
    };
    for (const { route, by } of findShadowed(compiled.routes)) {
      io.err(
        `${file}: warning: routes[${route.index}] "${route.name}"${at(route.index)} is shadowed by ` +
          `routes[${by.index}] "${by.name}"${at(by.index)} and never matches`,
      );
    }
    for (const { route, by } of findCaseShadowed(compiled.routes)) {
      io.err(
        `${file}: warning: routes[${route.index}] "${route.name}"${at(route.index)} is shadowed by case by ` +
          `routes[${by.index}] "${by.name}"${at(by.index)} on the case-insensitive upstream ${route.spelling.origin}: ` +
          'its requests are refused (400) as another route\'s spelling',
      );
    }
    io.out(`${file}: valid (${compiled.routes.length} route${compiled.routes.length === 1 ? '' : 's'})`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) io.err(line);
      io.err(`${file}: invalid (${err.problems.length} error${err.problems.length === 1 ? '' : 's'})`);
      return 1;
    }
    throw err;
  }
}
