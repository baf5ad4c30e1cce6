// dist/build-info.json: written at build time by scripts/build-info.ts (git when there is one, ZT_BUILD_COMMIT
// for a Docker build, else "unknown"), read at runtime without git (build-info.ts), exported as zt_build_info.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Metrics, readBuildInfo, versionLine } from '../../src/metrics/index.ts';
import { parseExposition } from '../../src/metrics/exposition.ts';
import { root } from '../helpers/build.ts';
import { tempDir } from '../helpers/gateway.ts';

const pkg = join(root, 'package.json');
const { version } = JSON.parse(readFileSync(pkg, 'utf8')) as { version: string };
const HEAD = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();

function runScript(out: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-info.ts'), out], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 30_000 });
  expect(r.status).toBe(0);
  return JSON.parse(readFileSync(out, 'utf8')) as { version: string; commit: string };
}

describe('scripts/build-info.ts', () => {
  it('writes the package version and the commit of HEAD', () => {
    expect(HEAD).toMatch(/^[0-9a-f]{40}$/);
    expect(runScript(join(tempDir(), 'build-info.json'))).toEqual({ version, commit: HEAD });
  });

  it('takes ZT_BUILD_COMMIT first (a Docker build has no .git)', () => {
    const commit = 'abcdef0123456789abcdef0123456789abcdef01';
    expect(runScript(join(tempDir(), 'build-info.json'), { ZT_BUILD_COMMIT: commit })).toEqual({ version, commit });
  });

  it('writes commit "unknown" without git, or for a ZT_BUILD_COMMIT that is not a hash', () => {
    expect(runScript(join(tempDir(), 'build-info.json'), { GIT_DIR: join(tempDir(), 'no-git') }).commit).toBe('unknown');
    expect(runScript(join(tempDir(), 'build-info.json'), { ZT_BUILD_COMMIT: 'main"} 1\nevil' }).commit).toBe('unknown');
  });
});

describe('readBuildInfo', () => {
  it('reads the commit from the file and the version from package.json', () => {
    const file = join(tempDir(), 'build-info.json');
    writeFileSync(file, JSON.stringify({ version: '0.0.0-stale', commit: 'abc1234def' }));
    expect(readBuildInfo(file, pkg)).toEqual({ version, commit: 'abc1234def', node: process.version });
    expect(versionLine(readBuildInfo(file, pkg))).toBe(`zt-gateway ${version} (commit abc1234) node ${process.version}`);
  });

  it('reports commit "unknown" for a missing, malformed or hostile file (its values become labels)', () => {
    const dir = tempDir();
    const bad = join(dir, 'bad.json');
    for (const text of ['not json', '[]', '{"commit": 42}', '{"commit": "abc1234\\"} 1"}', '{"commit": "HEAD"}']) {
      writeFileSync(bad, text);
      expect(readBuildInfo(bad, pkg).commit).toBe('unknown');
    }
    expect(readBuildInfo(join(dir, 'missing.json'), pkg)).toEqual({ version, commit: 'unknown', node: process.version });
    expect(versionLine(readBuildInfo(join(dir, 'missing.json'), pkg))).toBe(`zt-gateway ${version} (commit unknown) node ${process.version}`);
  });

  it('falls back to the build file version when package.json cannot be read', () => {
    const file = join(tempDir(), 'build-info.json');
    writeFileSync(file, JSON.stringify({ version: '9.8.7', commit: 'unknown' }));
    expect(readBuildInfo(file, join(tempDir(), 'package.json'))).toEqual({ version: '9.8.7', commit: 'unknown', node: process.version });
  });
});

describe('zt_build_info', () => {
  it('is one sample, value 1, labelled with the build it was given', async () => {
    const build = { version: '1.2.3', commit: 'abcdef0123456789abcdef0123456789abcdef01', node: process.version };
    const m = parseExposition((await new Metrics({ build }).scrape()).body);
    expect(m.samples('zt_build_info')).toEqual([{ labels: build, value: 1 }]);
  });
});
