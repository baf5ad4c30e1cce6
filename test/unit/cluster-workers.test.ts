// --workers values: auto (the available cores), 1..256; everything else is a usage error.
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseWorkers } from '../../src/server/cluster.ts';

describe('parseWorkers', () => {
  it('accepts auto and 1..256', () => {
    expect(parseWorkers('auto')).toBe(Math.min(256, availableParallelism()));
    expect(parseWorkers('1')).toBe(1);
    expect(parseWorkers('2')).toBe(2);
    expect(parseWorkers('256')).toBe(256);
  });

  it('refuses anything else', () => {
    for (const bad of ['0', '257', '-1', '1.5', '01', ' 2', '2 ', 'AUTO', '', '1e2', '0x10']) expect(parseWorkers(bad), bad).toBeUndefined();
  });
});
