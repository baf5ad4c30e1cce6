// `validate` warns about a route that an earlier one shadows (it can never match), and only then.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateCommand } from '../../src/cli/validate.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { findShadowed } from '../../src/routing/shadow.ts';
import { tempDir } from '../helpers/gateway.ts';

interface RouteSpec {
  name: string;
  host?: string | string[];
  path?: string;
  methods?: string[];
}

function yamlFor(specs: RouteSpec[]): string {
  const lines = specs.map((s) => {
    const match: Record<string, unknown> = {};
    if (s.host !== undefined) match.host = s.host;
    if (s.path !== undefined) match.path = s.path;
    if (s.methods !== undefined) match.methods = s.methods;
    return `  - { name: ${s.name}, match: ${JSON.stringify(match)}, upstream: { url: "http://127.0.0.1:9" }, public: true }`;
  });
  return `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
routes:
${lines.join('\n')}
`;
}

/** [shadowed, by] name pairs. */
async function shadowed(specs: RouteSpec[]): Promise<Array<[string, string]>> {
  const compiled = await compileConfig(parseConfigText(yamlFor(specs), 'shadow.yaml', tempDir(), {}));
  return findShadowed(compiled.routes).map(({ route, by }) => [route.name, by.name]);
}

async function runValidate(text: string) {
  const file = join(tempDir(), 'gateway.yaml');
  writeFileSync(file, text);
  const out: string[] = [];
  const err: string[] = [];
  const code = await validateCommand(file, { out: (l) => out.push(l), err: (l) => err.push(l) }, {});
  return { file, code, out, err };
}

describe('validate prints shadow warnings and still succeeds', () => {
  it('names the shadowed route and the shadowing one, each with line:col', async () => {
    const text = `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
routes:
  - name: api
    match: { path: /api }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
  - name: users
    match: { path: /api/users, methods: [GET] }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
  - name: other
    match: { path: /other }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
`;
    const { file, code, out, err } = await runValidate(text);
    expect(code).toBe(0);
    expect(err).toEqual([
      `${file}: warning: routes[1] "users" (line 8:5) is shadowed by routes[0] "api" (line 4:5) and never matches`,
    ]);
    expect(out).toEqual([`${file}: valid (3 routes)`]);
  });

  it('prints no warning for a config without shadowing', async () => {
    const { file, code, out, err } = await runValidate(
      yamlFor([
        { name: 'login', path: '=/login' },
        { name: 'api', path: '/api' },
        { name: 'root', path: '/' },
      ]),
    );
    expect(code).toBe(0);
    expect(err).toEqual([]);
    expect(out).toEqual([`${file}: valid (3 routes)`]);
  });

  it('reports every shadowed route, each against the first route that shadows it', async () => {
    const { code, err } = await runValidate(
      yamlFor([
        { name: 'root', path: '/' },
        { name: 'a', path: '/a' },
        { name: 'b', path: '/b' },
      ]),
    );
    expect(code).toBe(0);
    expect(err).toHaveLength(2);
    expect(err[0]).toMatch(/routes\[1\] "a" \(line 5:5\) is shadowed by routes\[0\] "root" \(line 4:5\)/);
    expect(err[1]).toMatch(/routes\[2\] "b" \(line 6:5\) is shadowed by routes\[0\] "root" \(line 4:5\)/);
  });
});

describe('findShadowed: what is shadowed', () => {
  it('a deeper prefix under an earlier prefix', async () => {
    expect(await shadowed([{ name: 'api', path: '/api' }, { name: 'users', path: '/api/users' }])).toEqual([['users', 'api']]);
  });

  it('the same prefix twice', async () => {
    expect(await shadowed([{ name: 'a', path: '/x' }, { name: 'b', path: '/x/' }])).toEqual([['b', 'a']]);
  });

  it('an exact path under an earlier prefix (including the prefix itself)', async () => {
    expect(await shadowed([{ name: 'p', path: '/login' }, { name: 'e', path: '=/login' }])).toEqual([['e', 'p']]);
    expect(await shadowed([{ name: 'p', path: '/login' }, { name: 'e', path: '=/login/' }])).toEqual([['e', 'p']]);
    expect(await shadowed([{ name: 'e1', path: '=/login' }, { name: 'e2', path: '=/login' }])).toEqual([['e2', 'e1']]);
  });

  it('any-host before an exact host', async () => {
    expect(await shadowed([{ name: 'any', path: '/' }, { name: 'crm', host: 'crm.example.com', path: '/x' }])).toEqual([['crm', 'any']]);
  });

  it('a wildcard covers its subdomains and narrower wildcards', async () => {
    expect(await shadowed([{ name: 'w', host: '*.example.com' }, { name: 'a', host: 'a.example.com' }])).toEqual([['a', 'w']]);
    expect(await shadowed([{ name: 'w', host: '*.example.com' }, { name: 'd', host: 'a.b.example.com' }])).toEqual([['d', 'w']]);
    expect(await shadowed([{ name: 'w', host: '*.example.com' }, { name: 'n', host: '*.b.example.com' }])).toEqual([['n', 'w']]);
  });

  it('a host list that covers every host of the later route', async () => {
    expect(
      await shadowed([
        { name: 'list', host: ['a.example.com', 'b.example.com'] },
        { name: 'b', host: 'b.example.com', path: '/x' },
      ]),
    ).toEqual([['b', 'list']]);
  });

  it('any method before a method-restricted route; a method superset before a subset', async () => {
    expect(await shadowed([{ name: 'all', path: '/a' }, { name: 'get', path: '/a', methods: ['GET'] }])).toEqual([['get', 'all']]);
    expect(
      await shadowed([
        { name: 'rw', path: '/a', methods: ['GET', 'POST'] },
        { name: 'r', path: '/a/b', methods: ['GET'] },
      ]),
    ).toEqual([['r', 'rw']]);
  });
});

describe('findShadowed: no false warnings', () => {
  it('non-overlapping paths, including shared string prefixes that are not segment prefixes', async () => {
    expect(await shadowed([{ name: 'api', path: '/api' }, { name: 'apix', path: '/apix' }])).toEqual([]);
    expect(await shadowed([{ name: 'a', path: '/a/b' }, { name: 'b', path: '/a' }])).toEqual([]);
    expect(await shadowed([{ name: 'a', path: '/x' }, { name: 'b', path: '/y' }])).toEqual([]);
  });

  it('an exact route does not shadow a prefix route or a different exact path', async () => {
    expect(await shadowed([{ name: 'e', path: '=/login' }, { name: 'p', path: '/login' }])).toEqual([]);
    expect(await shadowed([{ name: 'e', path: '=/login' }, { name: 'e2', path: '=/login/' }])).toEqual([]);
    expect(await shadowed([{ name: 'e', path: '=/' }, { name: 'root', path: '/' }])).toEqual([]);
  });

  it('a later route with a narrower host that the earlier host list does not cover', async () => {
    expect(
      await shadowed([
        { name: 'list', host: ['a.example.com', 'b.example.com'] },
        { name: 'c', host: 'c.example.com', path: '/x' },
      ]),
    ).toEqual([]);
    expect(
      await shadowed([
        { name: 'list', host: ['a.example.com', 'b.example.com'] },
        { name: 'ac', host: ['a.example.com', 'c.example.com'] },
      ]),
    ).toEqual([]);
    expect(await shadowed([{ name: 'list', host: ['a.example.com'] }, { name: 'w', host: '*.a.example.com' }])).toEqual([]);
  });

  it('a wildcard does not cover its apex, a sibling or a wider wildcard', async () => {
    expect(await shadowed([{ name: 'w', host: '*.example.com' }, { name: 'apex', host: 'example.com' }])).toEqual([]);
    expect(await shadowed([{ name: 'w', host: '*.example.com' }, { name: 'bad', host: 'badexample.com' }])).toEqual([]);
    expect(await shadowed([{ name: 'n', host: '*.b.example.com' }, { name: 'w', host: '*.example.com' }])).toEqual([]);
  });

  it('a host-restricted route does not shadow an any-host route', async () => {
    expect(await shadowed([{ name: 'h', host: 'a.test' }, { name: 'any', path: '/x' }])).toEqual([]);
  });

  it('method subsets that are not covered', async () => {
    expect(await shadowed([{ name: 'get', path: '/a', methods: ['GET'] }, { name: 'all', path: '/a' }])).toEqual([]);
    expect(
      await shadowed([
        { name: 'get', path: '/a', methods: ['GET'] },
        { name: 'getpost', path: '/a', methods: ['GET', 'POST'] },
      ]),
    ).toEqual([]);
    expect(
      await shadowed([
        { name: 'get', path: '/a', methods: ['GET'] },
        { name: 'post', path: '/a', methods: ['POST'] },
      ]),
    ).toEqual([]);
  });
});
