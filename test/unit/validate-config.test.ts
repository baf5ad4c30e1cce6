// Load-time checks of request validation and resource-level authorization: schema problems with file and
// line (inline schemas in the config, OpenAPI problems in the OpenAPI file), identity field references
// and segment names with line:col, templated routes in the router and the shadow check, explain output.
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { findShadowed } from '../../src/routing/shadow.ts';
import { parseJsonBody } from '../../src/validate/json.ts';
import { compileValidation } from '../../src/validate/compile.ts';
import { tempDir } from '../helpers/gateway.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/openapi');
const HEAD = `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
identity_providers:
  corp: { type: jwt, issuer: https://idp.example.com, audiences: [gw], algorithms: [ES256], jwks_uri: https://idp.example.com/jwks }
routes:
`;

async function problems(text: string, dir = tempDir()): Promise<readonly ConfigProblem[]> {
  try {
    await compileConfig(parseConfigText(text, 'gw.yaml', dir, {}));
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be invalid');
}

async function compiles(text: string, dir = tempDir()) {
  return await compileConfig(parseConfigText(text, 'gw.yaml', dir, {}));
}

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('validate: schema problems are located', () => {
  it('an inline schema error names the key path and the line of the config', async () => {
    const p = await problems(`${HEAD}  - name: a
    match: { path: /a }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
    validate:
      body:
        type: object
        properties:
          qty: { type: integr }
`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ file: 'gw.yaml', path: 'routes[0].validate.body.properties.qty.type', line: 14, col: 24 });
    expect(p[0]?.message).toMatch(/invalid schema: schema keyword enum fails \(allowedValues: \["array"/);
  });

  it('a misspelt keyword in an inline schema is refused (strict)', async () => {
    const p = await problems(`${HEAD}  - name: a
    match: { path: /a }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
    validate: { body: { type: object, requierd: [a] } }
`);
    expect(p[0]?.message).toMatch(/unknown keyword: "requierd"/);
    expect(p[0]?.line).toBe(10);
  });

  it('an OpenAPI document error names the OpenAPI file and its line', async () => {
    const dir = tempDir();
    copyFileSync(join(FIXTURES, 'broken.yaml'), join(dir, 'api.yaml'));
    const text = `${HEAD}  - name: a
    match: { path: /a }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
    validate: { openapi: api.yaml }
`;
    const p = await problems(text, dir);
    expect(p).toEqual([{ file: 'api.yaml', path: '', keyPath: [], code: 'CFG_BAD_FILE', line: 13, col: 1, message: expect.stringMatching(/#\/paths\/~1items\/get\/responses must be object/) }]);
    writeFileSync(join(dir, 'gateway.yaml'), text);
    const r = await cli(['validate', join(dir, 'gateway.yaml')]);
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(/^api\.yaml: .*responses must be object at line 13:1$/);
  });

  it('an OpenAPI spec error (duplicate parameters) is located at its operation', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'spec.yaml'), `openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /items:
    get: { responses: { "200": { description: ok } } }
  /things:
    get:
      parameters:
        - { name: q, in: query, schema: { type: string } }
        - { name: q, in: query, schema: { type: integer } }
      responses: { "200": { description: ok } }
`);
    const p = await problems(`${HEAD}  - name: a
    match: { path: /a }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
    validate: { openapi: spec.yaml }
`, dir);
    expect(p[0]).toMatchObject({ file: 'spec.yaml', line: 10 }); // the second q
    expect(p[0]?.message).toBe('/paths/~1things/get/parameters/1: duplicate query parameter "q"');
  });

  it('a missing OpenAPI file and a recursive schema are config errors', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'rec.yaml'), `openapi: 3.1.0
info: { title: t, version: "1" }
paths:
  /nodes:
    post:
      requestBody:
        content:
          application/json:
            schema: { $ref: '#/components/schemas/Node' }
      responses: { "200": { description: ok } }
components:
  schemas:
    Node: { type: object, properties: { child: { $ref: '#/components/schemas/Node' } } }
`);
    const route = (file: string) => `${HEAD}  - name: a
    match: { path: /a }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
    validate: { openapi: ${file} }
`;
    expect((await problems(route('nope.yaml'), dir))[0]?.message).toMatch(/cannot read OpenAPI file \(ENOENT\)/);
    const rec = (await problems(route('rec.yaml'), dir))[0];
    expect(rec?.file).toBe('rec.yaml');
    expect(rec?.message).toMatch(/recursive schemas are not supported/);
    expect(rec?.line).toBe(9);
  });

  it('openapi and inline schemas together are refused', async () => {
    const p = await problems(`${HEAD}  - name: a
    match: { path: /a }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
    validate: { openapi: x.yaml, body: { type: object } }
`);
    expect(p[0]).toMatchObject({ path: 'routes[0].validate.openapi', line: 10 });
  });

  it('max_body takes bytes or units, capped at 64mb', async () => {
    const route = (v: string) => `${HEAD}  - name: a
    match: { path: /a }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
    validate: { body: { type: object }, max_body: ${v} }
`;
    expect((await problems(route('65mb')))[0]).toMatchObject({ path: 'routes[0].validate.max_body', line: 10 });
    expect((await problems(route('lots')))[0]?.path).toBe('routes[0].validate.max_body');
    expect((await compiles(route('64kb'))).routes[0]?.validator).not.toBeNull();
  });
});

describe('OpenAPI 3.1', () => {
  it('compiles 2020-12 schemas (type lists, const) and finds operations by template', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'api.yaml'), `openapi: 3.1.0
info: { title: t, version: "1" }
paths:
  /things/{id}:
    patch:
      parameters: [{ name: id, in: path, required: true, schema: { type: string, pattern: "^[a-z]+$" } }]
      requestBody:
        content:
          application/merge-patch+json:
            schema:
              type: object
              properties: { name: { type: [string, "null"] }, kind: { const: thing } }
      responses: { "200": { description: ok } }
`);
    const v = compileValidation({ openapi: 'api.yaml', max_body: 1024 }, dir);
    const op = v.select('PATCH', '/things/abc');
    expect(op).toBeDefined();
    expect(v.select('PATCH', '/things')).toBeUndefined();
    expect(v.select('GET', '/things/abc')).toBeUndefined();
    const body = op?.bodies.get('application/merge-patch+json')?.json;
    expect(body?.({ name: null, kind: 'thing' })).toBe(true);
    expect(body?.({ name: 5 })).toBe(false);
    expect(body?.({ other: 1 })).toBe(false);
    expect(op?.path?.validate?.({ id: 'ABC' })).toBe(false);
  });
});

describe('params: identity field references and segment names', () => {
  const route = (path: string, rule: string) => `${HEAD}  - name: a
    match: { path: "${path}" }
    upstream: { url: "http://127.0.0.1:9" }
    authenticate: [corp]
    authorize:
      allow:
        - ${rule}
`;

  it.each([
    ['claims', /an identity field/],
    ['claims.', /an identity field/],
    ['role', /an identity field/],
    ['email_verified', /an identity field/],
  ])('refuses the field reference %s with line:col', async (ref, message) => {
    const p = await problems(route('/t/{tenant}', `{ params: { tenant: "${ref}" } }`));
    expect(p[0]).toMatchObject({ path: 'routes[0].authorize.allow[0].params.tenant', line: 12 });
    expect(p[0]?.col).toBeGreaterThan(1);
    expect(p[0]?.message).toMatch(message);
  });

  it('refuses a parameter that the route path does not name', async () => {
    const p = await problems(route('/t/{tenant}', '{ params: { org: subject } }'));
    expect(p[0]).toMatchObject({ path: 'routes[0].authorize.allow[0].params', line: 12 });
    expect(p[0]?.message).toMatch(/names no segment \{org\} \(it has \{tenant\}\)/);
  });

  it.each([
    ['/t/a{b}', /must be a whole segment/],
    ['/t/{}', /is not a segment name/],
    ['/t/{a}/{a}', /used twice/],
    ['/t/{a-b}', /is not a segment name/],
  ])('refuses the route path %s', async (path, message) => {
    const p = await problems(route(path, '{ authenticated: true }'));
    expect(p[0]).toMatchObject({ path: 'routes[0].match.path', line: 7 });
    expect(p[0]?.message).toMatch(message);
  });
});

describe('templated routes', () => {
  const routes = (...paths: string[]) =>
    `${HEAD}${paths.map((p, i) => `  - { name: r${i}, match: { path: "${p}" }, upstream: { url: "http://127.0.0.1:9" }, public: true }`).join('\n')}\n`;

  it('match one non-empty segment per name, in file order with plain routes', async () => {
    const { router } = await compiles(routes('/tenants/{t}/invoices', '/tenants', '=/u/{id}'));
    const at = (p: string) => router.match('x', p, 'GET')?.name;
    expect(at('/tenants/acme/invoices')).toBe('r0');
    expect(at('/tenants/acme/invoices/9')).toBe('r0');
    expect(at('/tenants/acme/other')).toBe('r1');
    expect(at('/tenants/acme/invoicesX')).toBe('r1');
    expect(at('/u/7')).toBe('r2');
    expect(at('/u/7/x')).toBeUndefined();
    expect(at('/u/')).toBeUndefined();
  });

  it('the shadow check understands named segments', async () => {
    const shadowed = async (...paths: string[]) => findShadowed((await compiles(routes(...paths))).routes).map(({ route, by }) => [route.name, by.name]);
    expect(await shadowed('/tenants/{t}', '/tenants/acme/x')).toEqual([['r1', 'r0']]);
    expect(await shadowed('/tenants/acme', '/tenants/{t}')).toEqual([]);
    expect(await shadowed('/tenants', '/tenants/{t}/x')).toEqual([['r1', 'r0']]);
    expect(await shadowed('=/u/{id}', '=/u/7')).toEqual([['r1', 'r0']]);
    expect(await shadowed('=/u/{id}', '/u/7')).toEqual([]);
  });
});

describe('explain names the parameter that failed', () => {
  it('prints the rule, the reason and the parameter', async () => {
    const dir = tempDir();
    const config = join(dir, 'gateway.yaml');
    writeFileSync(config, `${HEAD}  - name: invoices
    match: { path: "/tenants/{tenant}/invoices" }
    upstream: { url: "http://127.0.0.1:9" }
    authenticate: [corp]
    authorize:
      allow:
        - { name: tenant-read, params: { tenant: claims.tenant_ids }, query_params: { year: claims.years } }
`);
    const id = join(dir, 'id.json');
    writeFileSync(id, JSON.stringify({ subject: 'erin', claims: { tenant_ids: ['acme'], years: ['2026'] } }));
    const base = ['explain', '--config', config, '--route', 'invoices', '--identity', id];
    const denied = await cli([...base, '--path', '/tenants/globex/invoices?year=2026']);
    expect(denied.code).toBe(1);
    expect(denied.out).toContain('reason:   tenant-read: param-unauthorized (parameter tenant)');
    const query = await cli([...base, '--path', '/tenants/acme/invoices?year=2026&year=1999']);
    expect(query.out).toContain('reason:   tenant-read: query-param-unauthorized (parameter year)');
    const ok = await cli([...base, '--path', '/tenants/acme%2Dx/invoices?year=2026']);
    expect(ok.out).toContain('reason:   tenant-read: param-unauthorized (parameter tenant)');
    const allowed = await cli([...base, '--path', '/tenants/acme/invoices?year=2026']);
    expect(allowed.code).toBe(0);
    expect(allowed.out).toContain('decision: allow (tenant-read)');
    const json = await cli([...base, '--path', '/tenants/globex/invoices?year=2026', '--json']);
    expect(JSON.parse(json.out.join('\n')).reasons).toEqual([{ rule: 'tenant-read', reason: 'param-unauthorized', param: 'tenant' }]);
  });
});

describe('config/examples/guarded-legacy.yaml', () => {
  const example = join(import.meta.dirname, '../../config/examples/guarded-legacy.yaml');
  it('validates, and its OpenAPI operations are relative to the templated route', async () => {
    const r = await cli(['validate', example]);
    expect(r).toMatchObject({ code: 0, out: [`${example}: valid (3 routes)`] });
    const dir = tempDir();
    const id = join(dir, 'erin.json');
    writeFileSync(id, JSON.stringify({ subject: 'erin', claims: { tenant_ids: ['acme'] } }));
    const base = ['explain', '--config', example, '--route', 'tenant-invoices', '--identity', id];
    expect((await cli([...base, '--path', '/tenants/acme/invoices/7'])).code).toBe(0);
    const denied = await cli([...base, '--path', '/tenants/globex/invoices/7']);
    expect(denied.out).toContain('reason:   tenant-read: param-unauthorized (parameter tenant)');
  });
});

describe('JSON body parsing', () => {
  const problem = (text: string) => {
    const r = parseJsonBody(Buffer.from(text));
    return 'problem' in r ? r.problem : undefined;
  };
  it('refuses duplicates (also escaped), depth over 64, malformed text; keeps strings with braces', () => {
    expect(problem('{"a":1,"a":2}')).toBe('duplicate-key');
    expect(problem('{"a":1,"\\u0061":2}')).toBe('duplicate-key');
    expect(problem('{"a":{"b":1},"c":{"b":2}}')).toBeUndefined();
    expect(problem('[{"a":1},{"a":1}]')).toBeUndefined();
    expect(problem('{"a":"{[\\"x\\"]}","b":"\\\\"}')).toBeUndefined();
    expect(problem(`${'['.repeat(64)}${']'.repeat(64)}`)).toBeUndefined();
    expect(problem(`${'['.repeat(65)}${']'.repeat(65)}`)).toBe('depth');
    expect(problem('['.repeat(1_000_000))).toBe('depth');
    expect(problem('{"a":')).toBe('json');
    expect(problem('{"a":"unterminated')).toBe('json');
    expect(problem('{"a":"b":"c"}')).toBe('json');
  });
});

describe('OpenAPI documents across reloads', () => {
  it('an unchanged file is served from the parse cache as a fresh copy; a changed file is parsed again', async () => {
    const { loadOpenApi } = await import('../../src/validate/openapi-load.ts');
    const dir = tempDir();
    const file = join(dir, 'orders.yaml');
    copyFileSync(join(import.meta.dirname, '..', 'fixtures', 'openapi', 'orders.yaml'), file);
    const first = loadOpenApi(file);
    const paths = (d: typeof first) => Object.keys(d.api.paths as object).sort();
    expect(paths(first)).toEqual(['/orders', '/orders/export', '/orders/{id}']);
    (first.api.paths as Record<string, unknown>)['/injected'] = {}; // compile closes schemas in place
    const again = loadOpenApi(file);
    expect(again.api).not.toBe(first.api);
    expect(paths(again)).toEqual(['/orders', '/orders/export', '/orders/{id}']);
    writeFileSync(file, `${(await import('node:fs')).readFileSync(file, 'utf8').replace('/orders/export:', '/orders/download:')}`);
    expect(paths(loadOpenApi(file))).toEqual(['/orders', '/orders/download', '/orders/{id}']);
  });
});
