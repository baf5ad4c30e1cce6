// Which build this process runs: the package version, the git commit it was built from and the Node version.
// The commit comes from dist/build-info.json, written by scripts/build-info.ts at `npm run build`: the image
// and the npm package have no .git, so nothing at runtime runs git. Read once, on first use.
import { readFileSync } from 'node:fs';

export interface BuildInfo {
  readonly version: string;
  /** Full git commit hash, or "unknown" (a build without git, or sources run without a build). */
  readonly commit: string;
  readonly node: string;
}

// src/metrics/ and dist/metrics/ both sit two levels under the package root: either resolves the same files,
// so sources run in a clone that was built report that build's commit, as bin/zt-gateway.js would run it.
const PACKAGE_JSON = new URL('../../package.json', import.meta.url);
export const BUILD_INFO_FILE = new URL('../../dist/build-info.json', import.meta.url);

const COMMIT = /^[0-9a-f]{7,64}$/;
const VERSION = /^[0-9A-Za-z.+-]{1,64}$/;

function readJson(file: URL | string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const valid = (v: unknown, shape: RegExp): string | undefined => (typeof v === 'string' && shape.test(v) ? v : undefined);

/** Reads the build info (a missing or malformed file gives commit "unknown"; values become labels, so they are checked). */
export function readBuildInfo(file: URL | string = BUILD_INFO_FILE, packageJson: URL | string = PACKAGE_JSON): BuildInfo {
  const built = readJson(file);
  const version = valid(readJson(packageJson).version, VERSION) ?? valid(built.version, VERSION) ?? 'unknown';
  return Object.freeze({ version, commit: valid(built.commit, COMMIT) ?? 'unknown', node: process.version });
}

let cached: BuildInfo | undefined;

/** This process's build info (read once). */
export function buildInfo(): BuildInfo {
  return (cached ??= readBuildInfo());
}

/** `zt-gateway 0.1.0 (commit abc1234) node v24.11.0`: the version line of the CLI. */
export function versionLine(info: BuildInfo = buildInfo()): string {
  const commit = info.commit === 'unknown' ? 'unknown' : info.commit.slice(0, 7);
  return `zt-gateway ${info.version} (commit ${commit}) node ${info.node}`;
}
