// config/schema.json is generated from the zod schema (`npm run schema`): fail when the two drift.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/schema.ts';

const schemaFile = new URL('../../config/schema.json', import.meta.url);

describe('config/schema.json', () => {
  it('is exactly what configJsonSchema() generates (run `npm run schema` after changing the schema)', () => {
    expect(readFileSync(schemaFile, 'utf8')).toBe(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

  it('rejects unknown keys at the top level and in routes', () => {
    const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as {
      additionalProperties?: unknown;
      required?: string[];
      properties: Record<string, { items?: { additionalProperties?: unknown; required?: string[] } }>;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['listen']);
    expect(schema.properties.routes?.items?.additionalProperties).toBe(false);
    expect(schema.properties.routes?.items?.required).toEqual(['name', 'upstream']);
  });
});
