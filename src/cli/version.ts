// `zt-gateway version` / `--version`: the package version, the git commit it was built from (when the build
// recorded one) and the Node version, as one line or, with --json, as an object.
import { parseArgs } from 'node:util';
import { buildInfo, versionLine } from '../metrics/index.ts';
import type { Output } from './validate.ts';

export function versionCommand(rest: string[], io: Output): number {
  const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } } });
  const info = buildInfo();
  io.out(values.json ? JSON.stringify(info) : versionLine(info));
  return 0;
}
