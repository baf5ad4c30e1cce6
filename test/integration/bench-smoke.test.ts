// Keeps `npm run bench` working: a few seconds of the harness on one scenario. No timing assertions.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('bench harness smoke', () => {
  it('runs one scenario against the bare undici proxy and writes its JSON', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'ztgw-bench-smoke-')), 'latest.json');
    const r = spawnSync(process.execPath, ['bench/run.js', '--smoke', '--only', 'public route', '--large-bytes', '0', '--out', out], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| bare undici proxy \| [\d,]+ \|/);
    expect(r.stdout).toMatch(/\| zt-gateway public route \| [\d,]+ \|.*\| yes \|/);
    expect(r.stdout).toMatch(/WebSocket echo/);
    const json = JSON.parse(readFileSync(out, 'utf8')) as { rows: Array<{ name: string; rps: number; ok: boolean }> };
    expect(json.rows.map((x) => x.name)).toEqual(['bare undici proxy', 'zt-gateway public route']);
    for (const row of json.rows) {
      expect(row.ok).toBe(true);
      expect(row.rps).toBeGreaterThan(0);
    }
  }, 150_000);
});
