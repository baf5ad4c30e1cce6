// docs/admin-api.openapi.yaml describes exactly the routes the admin API serves (ADMIN_ROUTES drives the
// router), with every path parameter declared.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ADMIN_ROUTES } from '../../src/server/admin-api.ts';

interface Spec {
  openapi: string;
  paths: Record<string, Record<string, unknown> & { parameters?: Array<{ $ref?: string; name?: string; in?: string }> }>;
  components: { parameters: Record<string, { name: string; in: string }> };
}
const spec = parse(readFileSync(new URL('../../docs/admin-api.openapi.yaml', import.meta.url), 'utf8')) as Spec;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

describe('admin API OpenAPI file', () => {
  it('is OpenAPI 3.1', () => {
    expect(spec.openapi).toBe('3.1.0');
  });

  it('lists exactly the implemented method + path pairs', () => {
    const documented = Object.entries(spec.paths).flatMap(([path, item]) => Object.keys(item).filter((k) => METHODS.includes(k)).map((m) => `${m.toUpperCase()} ${path}`));
    const implemented = ADMIN_ROUTES.map((r) => `${r.method} ${r.path}`);
    expect(documented.sort()).toEqual([...implemented].sort());
  });

  it('declares every path parameter', () => {
    for (const [path, item] of Object.entries(spec.paths)) {
      const names = (item.parameters ?? []).map((p) => (p.$ref ? spec.components.parameters[p.$ref.split('/').at(-1) as string]?.name : p.name));
      const wanted = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      expect({ path, names }).toEqual({ path, names: wanted });
    }
  });

  it('documents 401 for every operation', () => {
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const m of Object.keys(item).filter((k) => METHODS.includes(k))) {
        expect(Object.keys((item[m] as { responses: object }).responses), `${m} ${path}`).toContain('401');
      }
    }
  });
});
