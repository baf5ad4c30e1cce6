// The layering rules (docs/architecture.md) run on src/ in every `npm test`, and the checker itself is
// proven on fixtures: it must see every module, and fail on each kind of violation it exists to catch.
import { execFileSync, spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLayers, importsOf } from '../../scripts/check-layers.ts';

const root = join(import.meta.dirname, '..', '..');
const fixtures = join(import.meta.dirname, '..', 'fixtures', 'layers');
const script = join(root, 'scripts', 'check-layers.ts');

describe('src/ layering', () => {
  const report = checkLayers(join(root, 'src'));

  it('sees every module of src/ and a plausible number of imports', () => {
    const onDisk = globSync('**/*.ts', { cwd: join(root, 'src') }).filter((f) => !f.endsWith('.d.ts'));
    expect(onDisk.length).toBeGreaterThan(100);
    expect(report.modules).toBe(onDisk.length);
    expect(report.imports).toBeGreaterThan(report.modules * 2);
  });

  it('has no violation: no cycle, core imports nothing, folders sealed, imports point down', () => {
    expect(report.violations.map((v) => `${v.rule}: ${v.from} -> ${v.to}`)).toEqual([]);
  });

  it('passes as a command (exit 0)', () => {
    const out = execFileSync(process.execPath, [script], { encoding: 'utf8' });
    expect(out).toMatch(/^layers: \d+ modules, \d+ imports, 0 violation\(s\)$/m);
  });
});

describe('the layering check', () => {
  it('passes a well-layered tree and counts what it saw (dynamic and type-only imports too)', () => {
    const r = checkLayers(join(fixtures, 'good'));
    expect(r.violations).toEqual([]);
    expect(r.modules).toBe(5);
    expect(r.imports).toBe(6);
  });

  it('fails each planted violation: core importing the project, an upward import, an internal, a cycle, an unknown folder', () => {
    const r = checkLayers(join(fixtures, 'bad'));
    const found = r.violations.map((v) => `${v.rule}: ${v.from} -> ${v.to}`).sort();
    expect(found).toEqual(
      [
        'core-isolated: core/index.ts -> normalize/index.ts',
        'cycle: pipeline/a.ts -> pipeline/b.ts',
        'folder-cycle: normalize -> pipeline',
        'layer: normalize/index.ts -> pipeline/index.ts',
        'sealed-folder: pipeline/a.ts -> normalize/internal.ts',
        'unknown-folder: server/index.ts -> plugins/index.ts',
      ].sort(),
    );
    expect(r.modules).toBe(8);
  });

  it('exits 1 with one line per violation as a command', () => {
    const run = spawnSync(process.execPath, [script, join(fixtures, 'bad')], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(6);
    expect(run.stdout).toContain('layers: 8 modules, 8 imports, 6 violation(s)');
  });

  it('reads every import form: multi-line, type-only, export-from, side-effect and dynamic', () => {
    const src = [
      "import type {\n  A,\n  B,\n} from './a.ts';",
      "export { c } from \"../x/c.ts\";",
      "export * from './d.ts';",
      "import './side.ts';",
      "const m = await import('../y/index.ts');",
      "import { readFileSync } from 'node:fs';",
      "// import { nope } from './comment-at-column-3.ts';",
    ].join('\n');
    expect(importsOf(src, 'pipeline/m.ts')).toEqual(['pipeline/a.ts', 'x/c.ts', 'pipeline/d.ts', 'pipeline/side.ts', 'y/index.ts']);
  });
});
