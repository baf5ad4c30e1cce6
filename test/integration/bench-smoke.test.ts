// Keeps `npm run bench` working: a few seconds of the harness on one scenario. No timing assertions.
// Two runs: the defaults (wrk and nginx when installed) and the fallbacks (autocannon, the node upstream).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function runBench(only: string, extra: string[]) {
  const out = join(mkdtempSync(join(tmpdir(), 'ztgw-bench-smoke-')), 'latest.json');
  const r = spawnSync(process.execPath, ['bench/run.js', '--smoke', '--only', only, '--large-bytes', '0', '--out', out, ...extra], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/\| bare undici proxy \| [\d,]+ \|/);
  expect(r.stdout).toMatch(/WebSocket echo/);
  return { stdout: r.stdout, json: JSON.parse(readFileSync(out, 'utf8')) as { loader: string; upstream: string; rows: Array<{ name: string; rps: number; ok: boolean }> } };
}

describe('bench harness smoke', () => {
  it('runs one scenario against the bare undici proxy and writes its JSON', () => {
    const { stdout, json } = runBench('public route', []);
    expect(stdout).toMatch(/\| zt-gateway public route \| [\d,]+ \|.*\| yes \|/);
    expect(json.rows.map((x) => x.name)).toEqual(['bare undici proxy', 'zt-gateway public route', 'zt-gateway public route, POST 1 KB JSON']);
    for (const row of json.rows) {
      expect(row.ok).toBe(true);
      expect(row.rps).toBeGreaterThan(0);
    }
  }, 150_000);

  it('runs the OIDC session scenario with autocannon against the node upstream', () => {
    const { stdout, json } = runBench('OIDC', ['--loader', 'autocannon', '--upstream', 'node']);
    expect(json.loader).toBe('autocannon');
    expect(json.upstream).toBe('node');
    expect(stdout).toMatch(/\| zt-gateway OIDC session cookie route \| [\d,]+ \|.*\| yes \|/);
    expect(json.rows.map((x) => x.name)).toEqual(['bare undici proxy', 'zt-gateway OIDC session cookie route']);
    for (const row of json.rows) expect(row.rps).toBeGreaterThan(0);
  }, 150_000);
});
