// ${env:NAME} and ${file:path} references: resolved at load, relative to the config file, never leaked in errors.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { resolveReferences } from '../../src/config/secrets.ts';
import { tempDir } from '../helpers/gateway.ts';

const SECRET = 'hs256-shared-secret-0123456789abcdef-XYZ';

function writeConfig(dir: string, yaml: string, name = 'gateway.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

async function loadError(file: string, env: NodeJS.ProcessEnv): Promise<ConfigError> {
  try {
    await compileConfig(loadConfigFile(file, env));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const jwtConfig = (secretRef: string, url = 'http://127.0.0.1:8080') => `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
identity_providers:
  ci:
    type: jwt
    issuer: https://ci.example.com
    audiences: [gw]
    algorithms: [HS256]
    secret: "${secretRef}"
routes:
  - name: app
    upstream: { url: "${url}" }
    authenticate: [ci]
    authorize: { allow: [{ authenticated: true }] }
`;

describe('resolveReferences', () => {
  const source = { env: { A: 'alpha', B: 'beta', EMPTY: '' }, baseDir: tempDir() };

  it('leaves strings without references untouched', () => {
    expect(resolveReferences('plain $text {x} $ {env:A}', source)).toBe('plain $text {x} $ {env:A}');
  });

  it('replaces env references, also embedded and repeated', () => {
    expect(resolveReferences('${env:A}', source)).toBe('alpha');
    expect(resolveReferences('postgres://u:${env:A}@db/${env:B}?x=${env:A}', source)).toBe('postgres://u:alpha@db/beta?x=alpha');
    expect(resolveReferences('[${env:EMPTY}]', source)).toBe('[]');
  });

  it('does not re-expand a value that itself looks like a reference', () => {
    expect(resolveReferences('${env:R}', { env: { R: '${env:A}' }, baseDir: source.baseDir })).toBe('${env:A}');
  });

  it('does not interpret $ patterns in the value', () => {
    expect(resolveReferences('x${env:D}y', { env: { D: "$&$1$$$'" }, baseDir: source.baseDir })).toBe("x$&$1$$$'y");
  });

  it('reads file references relative to baseDir, dropping one trailing newline only', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'one.txt'), 'first\n');
    writeFileSync(join(dir, 'secrets', 'two.txt'), 'second\n\n');
    writeFileSync(join(dir, 'secrets', 'crlf.txt'), 'third\r\n');
    const s = { env: {}, baseDir: dir };
    expect(resolveReferences('${file:secrets/one.txt}', s)).toBe('first');
    expect(resolveReferences('${file:secrets/two.txt}', s)).toBe('second\n');
    expect(resolveReferences('${file:secrets/crlf.txt}', s)).toBe('third');
    expect(resolveReferences('a-${file:secrets/one.txt}-${env:X}', { env: { X: 'z' }, baseDir: dir })).toBe('a-first-z');
    expect(resolveReferences(`\${file:${join(dir, 'secrets', 'one.txt')}}`, { env: {}, baseDir: '/' })).toBe('first');
  });

  it('a missing env var is an error naming the reference', () => {
    expect(() => resolveReferences('x${env:NOPE}', source)).toThrowError(
      'environment variable NOPE referenced by ${env:NOPE} is not set',
    );
  });

  it('an invalid env var name is an error', () => {
    expect(() => resolveReferences('${env:1BAD}', source)).toThrowError('invalid environment variable name in ${env:1BAD}');
    expect(() => resolveReferences('${env:}', source)).toThrowError('invalid environment variable name in ${env:}');
  });

  it('an unreadable file is an error naming the reference', () => {
    expect(() => resolveReferences('${file:missing.txt}', source)).toThrowError(
      'file missing.txt referenced by ${file:missing.txt} cannot be read (ENOENT)',
    );
    expect(() => resolveReferences('${file:}', source)).toThrowError('empty path in ${file:}');
  });

  it('an unknown reference kind is an error, never used literally', () => {
    expect(() => resolveReferences('${ENV:A}', source)).toThrowError(/unknown reference kind "ENV"/);
    expect(() => resolveReferences('x-${vault:secret/db}', source)).toThrowError(/unknown reference kind "vault"/);
  });
});

describe('references in a config file', () => {
  it('resolves env and file references, file paths relative to the config file (not the cwd)', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'conf'));
    mkdirSync(join(dir, 'conf', 'secrets'));
    writeFileSync(join(dir, 'conf', 'secrets', 'hs.key'), `${SECRET}\n`);
    const file = writeConfig(join(dir, 'conf'), jwtConfig('${file:secrets/hs.key}', 'http://${env:UP_HOST}:${env:UP_PORT}'));
    const loaded = loadConfigFile(file, { UP_HOST: '127.0.0.1', UP_PORT: '9099' });
    const provider = loaded.config.identity_providers.ci;
    expect(provider?.type === 'jwt' && provider.secret).toBe(SECRET);
    expect(loaded.config.routes[0]?.upstream.url).toBe('http://127.0.0.1:9099');
    expect(loaded.baseDir).toBe(join(dir, 'conf'));
    const compiled = await compileConfig(loaded);
    expect(compiled.routes[0]?.upstream.origin).toBe('http://127.0.0.1:9099');
  });

  it('resolves an env reference', () => {
    const file = writeConfig(tempDir(), jwtConfig('${env:HS_SECRET}'));
    const provider = loadConfigFile(file, { HS_SECRET: SECRET }).config.identity_providers.ci;
    expect(provider?.type === 'jwt' && provider.secret).toBe(SECRET);
  });

  it('a missing env var is a located error naming the reference, without printing other secrets', async () => {
    const dir = tempDir();
    const file = writeConfig(dir, jwtConfig('${env:HS_SECRET}', 'http://${env:UP_HOST}:8080'));
    const err = await loadError(file, { UP_HOST_TYPO: SECRET });
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
    expect(err.problems).toMatchObject([
      { file, code: 'CFG_BAD_REFERENCE', path: 'identity_providers.ci.secret', keyPath: ['identity_providers', 'ci', 'secret'], line: 9, col: 13 },
      { file, code: 'CFG_BAD_REFERENCE', path: 'routes[0].upstream.url', keyPath: ['routes', 0, 'upstream', 'url'], line: 12, col: 22 },
    ]);
    // Each problem names its reference (the operator's own text, not the gateway's wording).
    expect(err.problems[0]?.message).toContain('${env:HS_SECRET}');
    expect(err.problems[1]?.message).toContain('${env:UP_HOST}');
    expect(err.message).not.toContain(SECRET);
  });

  it('an unreadable file is a located error naming the reference', async () => {
    const file = writeConfig(tempDir(), jwtConfig('${file:secrets/absent.key}'));
    const err = await loadError(file, {});
    expect(err.problems).toEqual([
      {
        file,
        path: 'identity_providers.ci.secret',
        keyPath: ['identity_providers', 'ci', 'secret'],
        code: 'CFG_BAD_REFERENCE',
        message: 'file secrets/absent.key referenced by ${file:secrets/absent.key} cannot be read (ENOENT)',
        line: 9,
        col: 13,
      },
    ]);
  });

  it('a resolved secret that fails validation is never echoed', async () => {
    const short = 'short-Secret-Value';
    const file = writeConfig(tempDir(), jwtConfig('${env:HS_SECRET}'));
    const err = await loadError(file, { HS_SECRET: short });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ path: 'identity_providers.ci.secret', line: 9, col: 13 });
    expect(err.message).not.toContain(short);
  });

  it('a value a message would echo is shown as its reference, not its content', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'host.txt'), 'Internal Host Name\n');
    const file = writeConfig(
      dir,
      `listen: { address: 127.0.0.1:0, plaintext: true }
trusted_proxies: ["\${env:PROXY_NET}"]
routes:
  - name: app
    match: { host: "\${file:host.txt}" }
    upstream: { url: "http://127.0.0.1:1" }
    public: true
`,
    );
    const err = await loadError(file, { PROXY_NET: 'corp-secret-range' });
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
    expect(err.problems).toMatchObject([
      { file, code: 'CFG_BAD_VALUE', path: 'trusted_proxies[0]', keyPath: ['trusted_proxies', 0], line: 2, col: 19 },
      { file, code: 'CFG_BAD_VALUE', path: 'routes[0].match.host', keyPath: ['routes', 0, 'match', 'host'], line: 5, col: 20 },
    ]);
    // The problems quote the reference as written, never its resolved (secret) value.
    expect(err.problems[0]?.message).toContain('${env:PROXY_NET}');
    expect(err.problems[1]?.message).toContain('${file:host.txt}');
    expect(err.message).not.toContain('corp-secret-range');
    expect(err.message).not.toContain('Internal Host Name');
  });

  it('an unknown reference kind in a config is an error', async () => {
    const file = writeConfig(tempDir(), jwtConfig('${ENV:HS_SECRET}'));
    const err = await loadError(file, { HS_SECRET: SECRET });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ path: 'identity_providers.ci.secret', line: 9, col: 13 });
    expect(err.problems[0]?.message).toMatch(/^unknown reference kind "ENV"/);
  });
});
