// Every error code the gateway can answer is documented in docs/errors.md with its HTTP status.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/core/errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
/** code → status from the table rows `| \`GW_ERR_X\` | 400 | when |`. */
const documented = new Map<string, number>();
for (const m of doc.matchAll(/^\|\s*`(GW_ERR_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) documented.set(m[1] as string, Number(m[2]));

describe('docs/errors.md', () => {
  it('has a table row for every code', () => {
    expect(documented.size).toBeGreaterThan(0);
    for (const code of Object.keys(ERROR_CODES)) expect(documented.has(code), `${code} is not in docs/errors.md`).toBe(true);
  });

  it.each(Object.entries(ERROR_CODES))('%s is documented with its status', (code, { status }) => {
    expect(documented.get(code)).toBe(status);
  });

  it('documents no code that does not exist', () => {
    for (const code of documented.keys()) expect(Object.hasOwn(ERROR_CODES, code), `${code} is not in ERROR_CODES`).toBe(true);
  });

  it('documents each code once', () => {
    const rows = [...doc.matchAll(/^\|\s*`(GW_ERR_[A-Z_]+)`/gm)].map((m) => m[1]);
    expect(rows).toHaveLength(new Set(rows).size);
  });

  it('names the config error code and its format', () => {
    expect(doc).toContain('GW_ERR_CONFIG_INVALID');
    expect(doc).toContain('file: key.path: message at line L:C');
  });
});
