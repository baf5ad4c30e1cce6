import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/authn/api-key.ts';
import { compileConfig } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { tempDir } from '../helpers/gateway.ts';

function compile(routeExtra: string, secondRoute = '') {
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
  return compileConfig(loadConfigFile(file, {}));
}

describe('identity header names', () => {
  it.each(['X-Forwarded-For', 'Host', 'Content-Length', 'Authorization', 'Cookie', 'Transfer-Encoding', 'X-Request-Id', 'Proxy-Foo'])(
    'refuses the reserved name %s with its location',
    (name) => {
      let err: unknown;
      try {
        compile(`    identity_headers: { user: ${name} }`);
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

  it('refuses one name used for two fields', () => {
    expect(() => compile('    identity_headers: { user: X-Remote-User, email: x-remote-user }')).toThrow(/already used for user/);
  });

  it("drops every route's custom identity header names on every route, public ones included", () => {
    const compiled = compile(
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
