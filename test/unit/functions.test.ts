// "No function in src/ over 80 lines of its own" (docs/architecture.md), checked in every `npm test`; the
// checker is proven on fixtures: a long function fails, a factory and its closure are measured apart.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { functionsOf, longFunctions, MAX_OWN_LINES } from '../../scripts/check-functions.ts';

const root = join(import.meta.dirname, '..', '..');
const fixtures = join(import.meta.dirname, '..', 'fixtures', 'functions');

describe('function length', () => {
  it(`src/ has no function over ${MAX_OWN_LINES} lines of its own, out of many it saw`, () => {
    const { functions, long } = longFunctions(join(root, 'src'));
    expect(functions).toBeGreaterThan(800);
    expect(long.map((f) => `${f.file}:${f.line} ${f.name} (${f.ownLines})`)).toEqual([]);
  });

  it('measures own lines: a factory apart from its closure, methods and declarations by name', () => {
    const fns = functionsOf(readFileSync(join(fixtures, 'factory.ts'), 'utf8'), 'factory.ts');
    expect(fns.map((f) => [f.name, f.ownLines]).sort()).toEqual([
      ['(anonymous)', 73],
      ['createThing', 62],
      ['method', 3],
    ]);
  });

  it('fails a function one line over the limit, as a command too', () => {
    const { functions, long } = longFunctions(fixtures);
    expect(functions).toBe(4);
    expect(long).toEqual([{ file: 'long.ts', line: 2, name: 'tooLong', ownLines: 81 }]);
    const run = spawnSync(process.execPath, [join(root, 'scripts', 'check-functions.ts'), fixtures], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('long.ts:2: tooLong has 81 lines of its own (at most 80)');
  });
});
