import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/authn/api-key.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { tempDir } from '../helpers/gateway.ts';

async function compile(routeExtra: string, secondRoute = '') {
  const dir = tempDir();
  writeFileSync(join(dir, 'keys.yaml'), `keys: [{ id: k1, hash: ${hashKey('secret-key')}, subject: alice }]\n`);
  const file = join(dir, 'gw.yaml');
  writeFileSync(
    file,
    `listen: { address: 127.0.0.1:0, plaintext: true }
identity_providers:
  keys: { type: api_key, keys_file: keys.yaml }
routes:
  - name: app
    match: { path: /app }
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
${routeExtra}
${secondRoute}`,
  );
  return await compileConfig(loadConfigFile(file, {}));
}

describe('identity header names', () => {
  it.each(['X-Forwarded-For', 'Host', 'Content-Length', 'Authorization', 'Cookie', 'Transfer-Encoding', 'X-Request-Id', 'Proxy-Foo'])(
    'refuses the reserved name %s with its location',
    async (name) => {
      let err: unknown;
      try {
        await compile(`    identity_headers: { user: ${name} }`);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      const p = (err as ConfigError).problems[0];
      expect(p?.path).toBe('routes[0].identity_headers.user');
      expect(p?.message).toContain('reserved header');
      expect(p?.line).toBe(10);
    },
  );

  it('refuses one name used for two fields', async () => {
    await expect(compile('    identity_headers: { user: X-Remote-User, email: x-remote-user }')).rejects.toThrow(/already used for user/);
  });

  it("drops every route's custom identity header names on every route, public ones included", async () => {
    const compiled = await compile(
      '    identity_headers: { user: X-Remote-User, groups: X-Remote-Groups }',
      `  - name: public
    match: { path: /pub }
    upstream: { url: http://127.0.0.1:9 }
    public: true`,
    );
    const pub = compiled.routes.find((r) => r.name === 'public');
    expect([...(pub?.dropHeaders ?? [])].sort()).toEqual(['x-remote-groups', 'x-remote-user']);
  });
});

describe('identity_headers.prefix', () => {
  async function problemsFor(prefix: string): Promise<Array<{ path: string; message: string; line: number | undefined }>> {
    const dir = tempDir();
    const file = join(dir, 'gw.yaml');
    writeFileSync(
      file,
      `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers:
  prefix: "${prefix}"
routes:
  - name: app
    match: { path: / }
    upstream: { url: http://127.0.0.1:9 }
    public: true
`,
    );
    try {
      await compileConfig(loadConfigFile(file, {}));
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.problems.map((p) => ({ path: p.path, message: p.message, line: p.line }));
    }
  }

  // Each would make the normalize stage strip legitimate headers from every request.
  it.each([
    ['Content-', /standard content-\* headers/],
    ['content-', /standard content-\* headers/],
    ['Content-ZT-', /standard content-\* headers/],
    ['Accept-', /standard accept-\* headers/],
    ['X-Forwarded-', /standard x-forwarded-\* headers/],
    ['X-Forwarded-ZT-', /standard x-forwarded-\* headers/],
    ['Sec-', /standard sec-\* headers/],
    ['Sec-ZT-', /standard sec-\* headers/],
    ['Proxy-', /standard proxy-\* headers/],
    ['If-', /too short/],
    ['X-', /too short/],
    ['ZT-', /too short/],
    ['User-', /standard header user-agent/],
    ['X-Request-', /standard header x-request-id/],
    ['X-Real-', /standard header x-real-ip/],
    ['Keep-', /standard header keep-alive/],
    ['Transfer-', /standard header transfer-encoding/],
    ['WWW-', /standard header www-authenticate/],
    ['X-HTTP-', /standard header x-http-method-override/],
    ['Upgrade-', /standard header upgrade-insecure-requests/],
  ])('refuses %s with its location', async (prefix, message) => {
    const problems = await problemsFor(prefix);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.path).toBe('identity_headers.prefix');
    expect(problems[0]?.message).toMatch(message);
    expect(problems[0]?.line).toBe(3);
  });

  it.each(['X-ZT-', 'X-Auth-', 'X-Remote-', 'Zt-Identity-', 'X-Acme-Id-'])('accepts %s', async (prefix) => {
    expect(await problemsFor(prefix)).toEqual([]);
  });
});
