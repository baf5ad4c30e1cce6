// The spelling rules of issue 17 items 1, 2 and 5 at unit level: equalsIgnoreCase folding (simple case
// mappings, dotless ı), folded canonical paths, query parameter keys, the load-time checks of
// upstream.case_insensitive (routes of one origin must agree; `validate` warns on case shadowing).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { canonicalPath } from '../../src/core/path.ts';
import { foldPath, foldText } from '../../src/normalize/case-fold.ts';
import { paramKeys, parseQuerySpellings } from '../../src/normalize/query.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { findCaseShadowed } from '../../src/routing/spelling-check.ts';
import { tempDir } from '../helpers/gateway.ts';

describe('foldText: Java equalsIgnoreCase equivalence', () => {
  it.each([
    ['ASCII', 'ADMIN', 'admin'],
    ['dotless ı', 'adm\u0131n', 'admin'],
    ['dotted İ', 'adm\u0130n', 'admin'],
    ['long s', '\u017Fecret', 'secret'],
    ['Kelvin sign', '\u212Aey', 'key'],
    ['Greek final sigma and capital', '\u03A3\u03C2', '\u03C3\u03C3'],
    ['sharp s stays (no simple upper-case)', 'stra\u00DFe', 'stra\u00DFe'],
    ['capital sharp s folds to ß', 'STRA\u1E9EE', 'stra\u00DFe'],
    ['ligature ﬁ stays', '\uFB01le', '\uFB01le'],
    ['É', '\u00C9t\u00E9', '\u00E9t\u00E9'],
  ])('%s', (_label, text, folded) => {
    expect(foldText(text)).toBe(folded);
  });
});

describe('foldPath on canonical paths', () => {
  it.each([
    ['/Admin/Users', '/admin/users'],
    ['/adm%C4%B1n', '/admin'],
    ['/adm%C4%B0n/X', '/admin/x'],
    ['/caf%C3%89', '/caf%C3%A9'],
    ['/A%3Fb%25C', '/a%3Fb%25c'],
    ['/A%20B', '/a%20b'],
    ['/%E6%97%A5', '/%E6%97%A5'],
  ])('%s → %s', (path, folded) => {
    expect(foldPath(canonicalPath(path).path)).toBe(folded);
  });
});

describe('NTFS stream syntax in canonicalPath', () => {
  it.each(['/a::$DATA', '/a:$I30:$INDEX_ALLOCATION/b', '/a%3A%24DATA', '/a:%24x', '/a;p::$DATA'])('%s is refused', (path) => {
    expect(() => canonicalPath(path)).toThrow(expect.objectContaining({ code: 'GW_ERR_BAD_PATH' }));
  });
  it.each(['/a:b', '/a$b', '/a$:b', '/12:30/$x'])('%s is a path', (path) => {
    expect(canonicalPath(path).path).toBe(path);
  });
});

describe('paramKeys and parseQuerySpellings', () => {
  it.each([
    ['tenant', ['tenant']],
    ['TENANT', ['tenant']],
    [' tenant ', ['tenant']],
    ['tenant.', ['tenant']],
    ['tenant. .', ['tenant']],
    ['tenant[]', ['tenant']],
    ['tenant[a][b]', ['tenant']],
    ['tenant\0x', ['tenant']],
    ['tenant.id', ['tenant_id']],
    ['tenant id', ['tenant_id']],
    ['tenant[id', ['tenant', 'tenant_id']],
    ['ORG_\u0131D', ['org_id']],
    ['%74enant', ['%74enant']],
  ])('%j → %j', (name, keys) => {
    expect(paramKeys(name)).toEqual(keys);
  });

  it('splits on & and ;, decodes once, files every value under its keys', () => {
    const q = parseQuerySpellings('?tenant=acme&x=1;TENANT=globex&tenant%5B%5D=initech&%2574enant=hooli&a+b=c');
    expect(q?.get('tenant')).toEqual(['acme', 'globex', 'initech']);
    expect(q?.get('%74enant')).toEqual(['hooli']);
    expect(q?.get('a_b')).toEqual(['c']);
    expect(parseQuerySpellings('?a=%zz')).toBeNull();
  });
});

const HEAD = `listen: { address: 127.0.0.1:0, plaintext: true }
routes:
`;
const route = (name: string, path: string, url: string, flag?: boolean) => `  - name: ${name}
    match: { path: "${path}" }
    upstream: { url: "${url}"${flag === undefined ? '' : `, case_insensitive: ${flag}`} }
    public: true
`;

async function problems(text: string): Promise<readonly ConfigProblem[]> {
  try {
    await compileConfig(parseConfigText(text, 'gw.yaml', tempDir(), {}));
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('upstream.case_insensitive at load', () => {
  it('routes that share an origin must agree on it (error with line:col)', async () => {
    const p = await problems(`${HEAD}${route('a', '/a', 'http://10.0.0.1:80', true)}${route('b', '/b', 'http://10.0.0.1', false)}${route('c', '/c', 'http://10.0.0.2', true)}`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ code: 'CFG_CONFLICT', path: 'routes[1].upstream.case_insensitive', line: 9 });
    expect(p[0]?.message).toContain('routes "a" and "b" share the upstream http://10.0.0.1');
  });

  it('routes of one origin that agree, and different origins that differ, are fine', async () => {
    expect(await problems(`${HEAD}${route('a', '/a', 'http://10.0.0.1', true)}${route('b', '/b', 'http://10.0.0.1', true)}${route('c', '/c', 'http://10.0.0.2')}`)).toEqual([]);
  });

  it('finds routes that an earlier route of the same case-insensitive origin catches once folded', async () => {
    const text = `${HEAD}${route('upper', '/Admin', 'http://10.0.0.1', true)}${route('lower', '/admin/users', 'http://10.0.0.1', true)}${route('other', '/ADMIN/x', 'http://10.0.0.2')}${route('exact', '/Admin/y', 'http://10.0.0.1', true)}`;
    const compiled = await compileConfig(parseConfigText(text, 'gw.yaml', tempDir(), {}));
    // `exact` is shadowed without folding (the ordinary warning), `other` goes to a case-sensitive origin
    expect(findCaseShadowed(compiled.routes).map(({ route: r, by }) => [r.name, by.name])).toEqual([['lower', 'upper']]);
  });

  it('zt-gateway validate warns about case shadowing and exits 0', async () => {
    const file = join(tempDir(), 'gw.yaml');
    writeFileSync(file, `${HEAD}${route('upper', '/Admin', 'http://10.0.0.1', true)}${route('lower', '/admin/users', 'http://10.0.0.1', true)}`);
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['validate', file], { out: (l) => out.push(l), err: (l) => err.push(l) });
    expect(code).toBe(0);
    expect(err).toEqual([
      `${file}: warning: routes[1] "lower" (line 7:5) is shadowed by case by routes[0] "upper" (line 3:5) on the case-insensitive ` +
        'upstream http://10.0.0.1: its requests are refused (400) as another route\'s spelling',
    ]);
    expect(out).toEqual([`${file}: valid (2 routes)`]);
  });
});
