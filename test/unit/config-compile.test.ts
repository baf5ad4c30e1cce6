// Config compile per step: a ConfigError carries a stable code and the key path (never assert on message
// text); the compiled config and its parts are frozen; src/config/ imports no step folder.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, beforeAll } from 'vitest';
import { compilePolicy } from '../../src/authz/policy.ts';
import { CONFIG_ERROR_CODES, ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';
import { compileConfig, type CompiledConfig } from '../../src/pipeline/compile.ts';
import { compileRisk } from '../../src/risk/index.ts';
import { compileHostMatcher } from '../../src/routing/route.ts';
import { tempDir } from '../helpers/gateway.ts';

const LISTEN = 'listen: { address: 127.0.0.1:0, plaintext: true }\nidentity_headers: { assertion: false }';
const JWT = `identity_providers:
  corp: { type: jwt, issuer: https://idp.example.com, audiences: [gw], algorithms: [HS256], secret: "0123456789abcdef0123456789abcdef" }`;

async function compile(text: string): Promise<CompiledConfig> {
  return await compileConfig(parseConfigText(text, 'gw.yaml', tempDir(), {}));
}

async function refusal(text: string): Promise<ConfigError> {
  try {
    await compile(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('config was accepted');
}

const codes = (err: ConfigError) => err.problems.map((p: ConfigProblem) => [p.code, p.keyPath]);

describe('ConfigError: code and key path', () => {
  it('a bad policy rule: CFG_BAD_VALUE at the condition', async () => {
    const err = await refusal(`${LISTEN}\n${JWT}
routes:
  - name: app
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }, { source_ip: 10.0.0.0/33 }] }
`);
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
    expect(codes(err)).toEqual([['CFG_BAD_VALUE', ['routes', 0, 'authorize', 'allow', 1, 'source_ip']]]);
    expect(err.path).toEqual(['routes', 0, 'authorize', 'allow', 1, 'source_ip']);
  });

  it('compilePolicy throws with the path relative to authorize', () => {
    const ctx = { routePath: '/api', mfa: { amr: new Set<string>(), acr: new Set<string>() }, grants: new Set<string>() };
    const cases: Array<[object, string, (string | number)[]]> = [
      [{ allow: [{ source_ip: 'nope' }], deny: [] }, 'CFG_BAD_VALUE', ['allow', 0, 'source_ip']],
      [{ allow: [{ authenticated: true }], deny: [{ grant: 'oncall' }] }, 'CFG_UNKNOWN_NAME', ['deny', 0, 'grant']],
      [{ allow: [{}], deny: [] }, 'CFG_BAD_VALUE', ['allow', 0]],
    ];
    for (const [authorize, code, path] of cases) {
      let err: unknown;
      try {
        compilePolicy(authorize as never, ctx);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect({ code: (err as ConfigError).code, path: (err as ConfigError).path }).toEqual({ code, path });
    }
  });

  it('a bad risk setting: CFG_BAD_FILE at risk.geoip_db', async () => {
    const err = await refusal(`${LISTEN}\nrisk: { geoip_db: absent.mmdb }\n`);
    expect(codes(err)).toEqual([['CFG_BAD_FILE', ['risk', 'geoip_db']]]);
    const config = configSchema.parse({ listen: { address: '127.0.0.1:0', plaintext: true }, risk: { geoip_db: 'absent.mmdb' } });
    await expect(compileRisk(config, tempDir(), null)).rejects.toThrow(ConfigError);
  });

  it('a bad route host: CFG_BAD_VALUE at the pattern (schema and routing step)', async () => {
    const err = await refusal(`${LISTEN}
routes:
  - name: app
    match: { host: [ok.example.com, "bad host"] }
    upstream: { url: http://127.0.0.1:9 }
    public: true
`);
    expect(codes(err)).toEqual([['CFG_BAD_VALUE', ['routes', 0, 'match', 'host', 1]]]);
    const reported: ConfigError[] = [];
    expect(compileHostMatcher(['a.example.com', '*.b.example.com', 'x..y'], (e) => reported.push(e))).toEqual({
      exact: ['a.example.com'],
      wildcard: ['.b.example.com'],
    });
    expect(reported.map((e) => [e.code, e.path])).toEqual([['CFG_BAD_VALUE', ['host', 2]]]);
  });

  it('a bad identity header: reserved (CFG_BAD_VALUE) and reused (CFG_DUPLICATE) names', async () => {
    const err = await refusal(`${LISTEN}
routes:
  - name: app
    upstream: { url: http://127.0.0.1:9 }
    public: true
    identity_headers: { user: Authorization, email: X-ZT-Groups }
`);
    expect(codes(err)).toEqual([
      ['CFG_BAD_VALUE', ['routes', 0, 'identity_headers', 'user']],
      ['CFG_DUPLICATE', ['routes', 0, 'identity_headers', 'groups']],
    ]);
  });

  it('upstream.tls on an http URL: CFG_CONFLICT at upstream.tls (no guessing from the message)', async () => {
    const err = await refusal(`${LISTEN}
routes:
  - name: app
    upstream: { url: http://127.0.0.1:9, tls: { servername: x } }
    public: true
`);
    expect(codes(err)).toEqual([['CFG_CONFLICT', ['routes', 0, 'upstream', 'tls']]]);
  });

  it('load problems: syntax, unknown key, missing key, unknown provider, duplicate route name', async () => {
    expect(codes(await refusal(`${LISTEN}\nroutes: [\n`))[0]?.[0]).toBe('CFG_SYNTAX');
    expect(codes(await refusal(`${LISTEN}\nnope: 1\n`))).toEqual([['CFG_UNKNOWN_KEY', ['nope']]]);
    expect(codes(await refusal(`${LISTEN}\nroutes: [{ name: a }]\n`))).toEqual([['CFG_MISSING_KEY', ['routes', 0, 'upstream']]]);
    const route = (name: string) => `  - { name: ${name}, upstream: { url: "http://127.0.0.1:9" }, authenticate: [ghost], authorize: { allow: [{ authenticated: true }] } }`;
    expect(codes(await refusal(`${LISTEN}\nroutes:\n${route('a')}\n${route('a')}\n`))).toEqual([
      ['CFG_UNKNOWN_NAME', ['routes', 0, 'authenticate', 0]],
      ['CFG_DUPLICATE', ['routes', 1, 'name']],
      ['CFG_UNKNOWN_NAME', ['routes', 1, 'authenticate', 0]],
    ]);
  });

  it('every code is from the documented closed set', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    for (const code of Object.keys(CONFIG_ERROR_CODES)) expect(doc, code).toContain(`| \`${code}\` |`);
  });
});

describe('the compiled config is frozen', () => {
  let compiled!: Awaited<ReturnType<typeof compile>>;
  beforeAll(async () => {
    compiled = await compile(`${LISTEN}\n${JWT}
routes:
  - name: app
    match: { host: app.example.com, path: /api }
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [corp]
    authorize: { allow: [{ groups: staff }] }
    cors: { origins: [https://app.example.com] }
`);
  });

  it('assignment throws in strict mode, at every level of plain data', () => {
    const route = compiled.routes[0] as CompiledRoute;
    const attempts: Array<() => void> = [
      () => Object.assign(compiled, { routes: [] }),
      () => (compiled.routes as CompiledRoute[]).push(route),
      () => Object.assign(route, { public: true }),
      () => Object.assign(route.upstream, { origin: 'http://evil.example' }),
      () => Object.assign(route.hosts as object, { exact: [] }),
      () => Object.assign(route.identityHeaders, { user: 'X-Other' }),
      () => Object.assign(route.policy as object, { evaluate: () => ({ allow: true }) }),
      () => Object.assign(route.cors as object, { actual: () => [] }),
      () => Object.assign(route.security, { flat: [] }),
      () => (route.security.flat as string[]).push('x', 'y'),
      () => Object.assign(compiled.config.listen, { address: '0.0.0.0:1' }),
      () => (compiled.config.routes[0] as { name: string }).name = 'other',
      () => (compiled.warnings as string[]).push('x'),
      () => Object.assign(compiled.trustedProxies, { empty: false }),
      () => Object.assign(compiled.mfa, { amr: new Set() }),
    ];
    for (const attempt of attempts) expect(attempt).toThrow(TypeError);
    expect(Object.isFrozen(compiled)).toBe(true);
  });
});

type CompiledRoute = CompiledConfig['routes'][number];

describe('src/config imports no step folder', () => {
  it('only its own files, src/core, node: built-ins and packages', () => {
    const dir = new URL('../../src/config/', import.meta.url).pathname;
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    const bad: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)['"]([^'"]+)['"]/gm)) {
        const spec = m[1] as string;
        const ok = spec.startsWith('./') || spec.startsWith('../core/') || spec.startsWith('node:') || !spec.startsWith('.');
        if (!ok) bad.push(`${f}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
