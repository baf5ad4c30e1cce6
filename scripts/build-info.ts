// Run by `npm run build` after tsc: writes dist/build-info.json = { version, commit } so a process started
// from dist/ knows which commit it was built from without git (the image and the npm package have no .git).
// The commit: ZT_BUILD_COMMIT when set (the Dockerfile's build arg: its build context has no .git either),
// else `git rev-parse HEAD`, else "unknown". Usage: node scripts/build-info.ts [output file]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = resolve(process.argv[2] ?? resolve(root, 'dist', 'build-info.json'));
const COMMIT = /^[0-9a-f]{7,64}$/;

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return undefined; // no git, or not a work tree
  }
}

const fromEnv = process.env.ZT_BUILD_COMMIT?.trim().toLowerCase();
const found = fromEnv ? fromEnv : gitCommit();
const commit = found !== undefined && COMMIT.test(found) ? found : 'unknown';
const { version } = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string };
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ version, commit }, null, 2)}\n`);
console.log(`build info: ${out}: version ${version}, commit ${commit}`);
