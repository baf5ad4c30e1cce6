// Tests that spawn bin/zt-gateway.js need dist/. `npm test` builds first (pretest); a file run alone on a
// stale dist/ builds it here.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const bin = join(root, 'bin', 'zt-gateway.js');

/** Newest mtime of the files under `dir` with the given suffix (0 when there are none). */
function newest(dir: string, suffix: string): number {
  let max = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith(suffix)) max = Math.max(max, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return max;
}

/** What `npm run build` does: tsc, then scripts/build-info.ts (dist/build-info.json). */
export function ensureBuilt(): void {
  const dist = join(root, 'dist');
  const compiled = existsSync(join(dist, 'cli', 'main.js')) && newest(dist, '.js') >= newest(join(root, 'src'), '.ts');
  if (compiled && existsSync(join(dist, 'build-info.json'))) return;
  const steps = [
    ...(compiled ? [] : [[join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']]),
    [join(root, 'scripts', 'build-info.ts')],
  ];
  for (const args of steps) {
    const run = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 120_000 });
    if (run.status !== 0) throw new Error(`npm run build failed:\n${run.stdout}\n${run.stderr}`);
  }
}
