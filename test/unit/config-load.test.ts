// Config errors: every problem names the file, the key path and the exact line:column (DESIGN.md §3).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { loadConfigFile, parseConfigText } from '../../src/config/load.ts';
import { tempDir } from '../helpers/gateway.ts';

const FILE = 'gw.yaml';
const LISTEN = 'listen: { address: 127.0.0.1:0, plaintext: true }';

/** Loads and compiles `text`; returns the formatted error lines (or [] when the config is valid). */
async function errorLines(text: string): Promise<string[]> {
  const err = await caught(text);
  return err ? err.message.split('\n') : [];
}

async function caught(text: string): Promise<ConfigError | undefined> {
  try {
    await compileConfig(parseConfigText(text, FILE, tempDir(), {}));
    return undefined;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
}

async function problems(text: string): Promise<readonly ConfigProblem[]> {
  const err = await caught(text);
  if (!err) throw new Error('expected the config to be invalid');
  return err.problems;
}

describe('a valid config', () => {
  it('loads with defaults applied', async () => {
    const text = `${LISTEN}
identity_headers: { assertion: false }
routes:
  - name: app
    upstream: { url: http://127.0.0.1:8080 }
    public: true
`;
    expect(await errorLines(text)).toEqual([]);
    const loaded = parseConfigText(text, FILE, tempDir(), {});
    expect(loaded.config.routes[0]?.upstream.timeout).toBe(30_000);
    expect(loaded.config.routes[0]?.match.path).toBe('/');
    expect(loaded.config.listen.limits.headers_timeout).toBe(20_000);
  });
});

describe('config errors name file, key path and line:col', () => {
  it('reports the example from the issue exactly: routes[2].upstream.url: invalid URL at line 14:12', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    match: { path: /a }
    upstream:
      url: http://127.0.0.1:8080
  - name: b
    match: { path: /b }
    upstream:
      url: http://127.0.0.1:8080
  - name: c
    match: { path: /c }
    upstream:
      url: "::nope"
`;
    expect(await errorLines(text)).toEqual(['gw.yaml: routes[2].upstream.url: invalid URL at line 14:12']);
    expect(await problems(text)).toEqual([
      { file: FILE, path: 'routes[2].upstream.url', keyPath: ['routes', 2, 'upstream', 'url'], code: 'CFG_BAD_VALUE', message: 'invalid URL', line: 14, col: 12 },
    ]);
  });

  it('unknown top-level key: reported at the key', async () => {
    const text = `${LISTEN}
routes: []
bogus: 1
`;
    expect(await errorLines(text)).toEqual(['gw.yaml: bogus: unknown key at line 3:1']);
  });

  it('unknown nested key: reported at the key itself (block and flow style)', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    upstream:
      url: http://127.0.0.1:8080
      colour: red
  - name: b
    match: { path: /b, hostname: x.example.com }
    upstream: { url: http://127.0.0.1:8080 }
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: routes[0].upstream.colour: unknown key at line 6:7',
      'gw.yaml: routes[1].match.hostname: unknown key at line 8:24',
    ]);
  });

  it('wrong type: reported at the value, never as "missing"', async () => {
    const text = `listen:
  address: 127.0.0.1:0
  plaintext: "yes"
routes:
  - name: a
    upstream: { url: http://127.0.0.1:8080, connections: many }
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: listen.plaintext: expected boolean, received string at line 3:14',
      'gw.yaml: routes[0].upstream.connections: expected number, received string at line 6:58',
    ]);
  });

  it('wrong type for enums, one-or-many values and lists', async () => {
    const text = `listen:
  address: 127.0.0.1:0
  tls: { cert: a.crt, key: a.key, client_auth: maybe }
routes:
  - name: a
    match: { host: 5, methods: get }
    upstream: { url: "http://127.0.0.1:1" }
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: listen.tls.client_auth: expected one of "none"|"optional"|"require" at line 3:48',
      'gw.yaml: routes[0].match.host: expected string or array, received number at line 6:20',
      'gw.yaml: routes[0].match.methods: expected array, received string at line 6:32',
    ]);
  });

  it('wrong type for a whole section', async () => {
    expect(await errorLines(`${LISTEN}\nroutes: { name: a }\n`)).toEqual([
      'gw.yaml: routes: expected array, received object at line 2:9',
    ]);
  });

  it('a null value is reported at its key', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    upstream:
`;
    expect(await errorLines(text)).toEqual(['gw.yaml: routes[0].upstream: expected object, received null at line 4:5']);
  });

  it('bad duration', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    upstream:
      url: http://127.0.0.1:8080
      timeout: 30 seconds
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: routes[0].upstream.timeout: expected a duration such as 250ms, 30s, 5m, 8h at line 6:16',
    ]);
  });

  it.each(['30', '1y', '-5s', '1.5s', ''])('rejects the duration %j', async (value) => {
    const lines = await errorLines(`${LISTEN}\nshutdown: { drain_timeout: "${value}" }\n`);
    expect(lines).toEqual([`gw.yaml: shutdown.drain_timeout: expected a duration such as 250ms, 30s, 5m, 8h at line 2:28`]);
  });

  it('missing required key: reported at the parent', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    match: { path: /x }
  - upstream: { url: http://127.0.0.1:8080 }
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: routes[0].upstream: required key is missing at line 3:5',
      'gw.yaml: routes[1].name: required key is missing at line 5:5',
    ]);
  });

  it('missing listen: reported at the document', async () => {
    expect(await errorLines('routes: []\n')).toEqual(['gw.yaml: listen: required key is missing at line 1:1']);
  });

  it('missing nested required key in a flow map: reported at the map', async () => {
    expect(await errorLines('listen: { plaintext: true }\n')).toEqual(['gw.yaml: listen.address: required key is missing at line 1:9']);
  });

  it('invalid upstream URLs: non-http scheme, a path, credentials, query, garbage', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    upstream: { url: "ftp://127.0.0.1:21" }
  - name: b
    upstream: { url: "http://127.0.0.1:8080/app" }
  - name: c
    upstream: { url: "http://admin:hunter2@127.0.0.1:8080" }
  - name: d
    upstream: { url: "http://127.0.0.1:8080?x=1" }
  - name: e
    upstream: { url: "file:///etc/passwd" }
  - name: f
    upstream: { url: "127.0.0.1:8080" }
`;
    const lines = await errorLines(text);
    expect(lines).toEqual([
      'gw.yaml: routes[0].upstream.url: upstream URL must be http:// or https:// at line 4:22',
      'gw.yaml: routes[1].upstream.url: upstream URL must be an origin (no path, query or fragment) at line 6:22',
      'gw.yaml: routes[2].upstream.url: upstream URL must not contain credentials at line 8:22',
      'gw.yaml: routes[3].upstream.url: upstream URL must be an origin (no path, query or fragment) at line 10:22',
      'gw.yaml: routes[4].upstream.url: upstream URL must be http:// or https:// at line 12:22',
      'gw.yaml: routes[5].upstream.url: invalid URL at line 14:22',
    ]);
    // The URL (and its password) is never echoed.
    expect(lines.join('\n')).not.toContain('hunter2');
  });

  it('bad CIDRs in trusted_proxies, each at its own entry', async () => {
    const text = `${LISTEN}
trusted_proxies:
  - 10.0.0.0/8
  - 10.0.0.0/33
  - banana
  - fd00::/8
  - 192.168.1.1/8/2
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: trusted_proxies[1]: invalid prefix length in "10.0.0.0/33" at line 4:5',
      'gw.yaml: trusted_proxies[2]: invalid CIDR "banana" at line 5:5',
      'gw.yaml: trusted_proxies[4]: invalid CIDR "192.168.1.1/8/2" at line 7:5',
    ]);
  });

  it('bad host patterns (single value and list entries)', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    match: { host: "exa mple.com" }
    upstream: { url: "http://127.0.0.1:1" }
  - name: b
    match:
      host: [ok.example.com, "*.*.example.com", "a.*.com", "*example.com"]
    upstream: { url: "http://127.0.0.1:1" }
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: routes[0].match.host: invalid host pattern "exa mple.com" (exact name or *.example.com) at line 4:20',
      'gw.yaml: routes[1].match.host[1]: invalid host pattern "*.*.example.com" (exact name or *.example.com) at line 8:30',
      'gw.yaml: routes[1].match.host[2]: invalid host pattern "a.*.com" (exact name or *.example.com) at line 8:49',
      'gw.yaml: routes[1].match.host[3]: invalid host pattern "*example.com" (exact name or *.example.com) at line 8:60',
    ]);
  });

  it('bad route paths', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    match: { path: /a/../b }
    upstream: { url: "http://127.0.0.1:1" }
  - name: b
    match: { path: "/admin;x" }
    upstream: { url: "http://127.0.0.1:1" }
  - name: c
    match: { path: api }
    upstream: { url: "http://127.0.0.1:1" }
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: routes[0].match.path: invalid path: dot segments are not allowed at line 4:20',
      'gw.yaml: routes[1].match.path: invalid path: route paths may not contain ;parameters at line 7:20',
      'gw.yaml: routes[2].match.path: invalid path: path must start with / at line 10:20',
    ]);
  });

  it('duplicate route names: reported at the second name', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    upstream: { url: "http://127.0.0.1:1" }
  - name: a
    upstream: { url: "http://127.0.0.1:1" }
`;
    expect(await errorLines(text)).toEqual(['gw.yaml: routes[1].name: duplicate route name "a" at line 5:11']);
  });

  it('YAML syntax error', async () => {
    const text = `listen: { address: 127.0.0.1:0, plaintext: true
routes: []
`;
    const p = await problems(text);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ file: FILE, path: '', line: 2, col: 1 });
    expect((await errorLines(text))[0]).toMatch(/^gw\.yaml: .+ at line 2:1$/);
  });

  it('YAML indentation error', async () => {
    const text = `listen:
  address: 127.0.0.1:0
 plaintext: true
`;
    expect(await errorLines(text)).toEqual(['gw.yaml: All mapping items must start at the same column at line 3:1']);
  });

  it('duplicate YAML keys: reported at the second key, with its path', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    upstream: { url: "http://127.0.0.1:1" }
    name: b
`;
    expect(await errorLines(text)).toEqual(['gw.yaml: routes[0].name: Map keys must be unique at line 5:5']);
    expect(await errorLines(`${LISTEN}\nroutes: []\nroutes: []\n`)).toEqual(['gw.yaml: routes: Map keys must be unique at line 3:1']);
  });

  it('several errors at once: all reported, in file order, across schema checks', async () => {
    const text = `${LISTEN}
foo: 1
routes:
  - name: a
    upstream: { url: "ftp://x", timeout: 5 }
  - name: "b c"
    upstream: { url: "http://127.0.0.1:1", timeout: 1y, extra: true }
trusted_proxies: [nope]
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: foo: unknown key at line 2:1',
      'gw.yaml: routes[0].upstream.url: upstream URL must be http:// or https:// at line 5:22',
      'gw.yaml: routes[0].upstream.timeout: expected string, received number at line 5:42',
      'gw.yaml: routes[1].name: route names are 1-64 of A-Z a-z 0-9 _ . - at line 6:11',
      'gw.yaml: routes[1].upstream.timeout: expected a duration such as 250ms, 30s, 5m, 8h at line 7:53',
      'gw.yaml: routes[1].upstream.extra: unknown key at line 7:57',
      'gw.yaml: trusted_proxies[0]: invalid CIDR "nope" at line 8:19',
    ]);
    expect((await caught(text))?.problems).toHaveLength(7);
  });

  it('several compile-time errors at once: all reported', async () => {
    const text = `${LISTEN}
routes:
  - name: a
    upstream: { url: "http://127.0.0.1:1" }
  - name: a
    upstream: { url: "http://127.0.0.1:1" }
    authenticate: [nobody]
`;
    expect(await errorLines(text)).toEqual([
      'gw.yaml: routes[1].name: duplicate route name "a" at line 5:11',
      'gw.yaml: routes[1].authenticate[0]: unknown identity provider "nobody" at line 7:20',
      'gw.yaml: routes[1].authenticate: a route with authenticate needs authorize (allow: [{ authenticated: true }] means any verified identity) at line 7:19',
    ]);
  });
});

describe('step_up needs a provider that can carry acr and auth_time', () => {
  const compileIn = async (providers: string, authenticate: string) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'keys.yaml'), 'keys: []\n');
    const text = `${LISTEN}
identity_providers:
${providers}
routes:
  - name: admin
    upstream: { url: "http://127.0.0.1:1" }
    authenticate: ${authenticate}
    authorize: { allow: [{ authenticated: true }] }
    step_up: { acr: mfa }
`;
    try {
      await compileConfig(parseConfigText(text, FILE, dir, {}));
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.message.split('\n');
      throw err;
    }
  };
  const KEYS = '  keys: { type: api_key, keys_file: keys.yaml }';
  const JWT = '  ci: { type: jwt, issuer: https://ci.example, audiences: [gw], jwks_uri: https://ci.example/jwks.json }';

  it('refuses a step_up route whose only providers are API keys (it could never be passed)', async () => {
    expect(await compileIn(KEYS, '[keys]')).toEqual([
      'gw.yaml: routes[0].step_up: step_up needs an oidc or jwt provider in authenticate (API keys and certificates carry no acr or auth_time) at line 9:14',
    ]);
  });

  it('accepts it with a jwt provider next to the API keys (tokens carry acr/amr/auth_time; keys get the 401)', async () => {
    expect(await compileIn(`${JWT}\n${KEYS}`, '[ci, keys]')).toEqual([]);
  });
});

describe('listen: TLS or an explicit plaintext', () => {
  it('refuses a listener with neither tls nor plaintext', async () => {
    expect(await errorLines('listen: { address: 127.0.0.1:0 }\n')).toEqual([
      'gw.yaml: listen.tls: listen.tls is required (or set plaintext: true explicitly) at line 1:9',
    ]);
    expect(await errorLines('listen: { address: 127.0.0.1:0, plaintext: false }\n')).toHaveLength(1);
  });

  it('refuses tls together with plaintext', async () => {
    const text = `listen:
  address: 127.0.0.1:0
  plaintext: true
  tls: { cert: a.crt, key: a.key }
`;
    expect(await errorLines(text)).toEqual(['gw.yaml: listen.plaintext: plaintext: true cannot be combined with tls at line 3:14']);
  });

  it('refuses a bad listen address', async () => {
    expect(await errorLines('listen: { address: "8443", plaintext: true }\n')).toEqual([
      'gw.yaml: listen.address: expected host:port, e.g. 0.0.0.0:8443 at line 1:20',
    ]);
  });
});

describe('loadConfigFile', () => {
  it('names the file it was given and locates problems in it', () => {
    const dir = tempDir();
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, `${LISTEN}\nnope: true\n`);
    expect(() => loadConfigFile(file, {})).toThrow(
      expect.objectContaining({ code: 'GW_ERR_CONFIG_INVALID', problems: [expect.objectContaining({ file, code: 'CFG_UNKNOWN_KEY', path: 'nope', keyPath: ['nope'], line: 2, col: 1 })] }),
    );
  });

  it('a missing file is a ConfigError naming the file, not a crash', () => {
    const file = join(tempDir(), 'absent.yaml');
    let err: unknown;
    try {
      loadConfigFile(file, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(`${file}: cannot read config file (ENOENT)`);
    expect((err as ConfigError).code).toBe('GW_ERR_CONFIG_INVALID');
  });

  it('an empty file reports the missing listen section', () => {
    const file = join(tempDir(), 'empty.yaml');
    writeFileSync(file, '');
    expect(() => loadConfigFile(file, {})).toThrow(
      expect.objectContaining({ code: 'GW_ERR_CONFIG_INVALID', problems: [expect.objectContaining({ file, code: 'CFG_MISSING_KEY', path: 'listen', keyPath: ['listen'] })] }),
    );
  });
});

describe('listen.http2 / listen.h2c', () => {
  const routes = `routes:
  - { name: app, match: { path: / }, upstream: { url: "http://127.0.0.1:9" }, public: true }
`;
  it('h2c on a TLS listener and http2: true on a plain one are conflicts', async () => {
    const h2cTls = await problems(`listen: { address: 127.0.0.1:0, tls: { cert: a.crt, key: a.key }, h2c: true }\n${routes}`);
    expect(h2cTls.map((p) => [p.code, String(p.path)])).toContainEqual(['CFG_CONFLICT', 'listen.h2c']);
    const http2Plain = await problems(`listen: { address: 127.0.0.1:0, plaintext: true, http2: true }\n${routes}`);
    expect(http2Plain.map((p) => [p.code, String(p.path)])).toEqual([['CFG_CONFLICT', 'listen.http2']]);
  });

  it('h2c: true on a plain listener and upstream.http2 load', async () => {
    expect(await errorLines(`listen: { address: 127.0.0.1:0, plaintext: true, h2c: true }
identity_headers: { assertion: false }
routes:
  - { name: app, match: { path: / }, upstream: { url: "http://127.0.0.1:9", http2: true }, public: true }
`)).toEqual([]);
  });
});
