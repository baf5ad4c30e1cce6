// Config for the access state: grants, the grant condition, admin.token_hash, on_state_error.
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { tempDir } from '../helpers/gateway.ts';

const base = (extra: string, allow = '{ grant: prod-db-admin }', route = '') => `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
identity_providers:
  ci: { type: jwt, issuer: "https://ci.test", audiences: [gw], algorithms: [HS256], secret: "${'s'.repeat(40)}" }
${extra}
routes:
  - name: db
    match: { path: /db }
    upstream: { url: "http://127.0.0.1:9" }
    authenticate: [ci]
    authorize: { allow: [${allow}] }
${route}`;

async function errors(text: string): Promise<string[]> {
  try {
    await compileConfig(parseConfigText(text, 'gw.yaml', tempDir(), {}));
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
}

const GRANTS = 'grants:\n  prod-db-admin: { approvers: [dba], max_duration: 8h }';

describe('access-state config', () => {
  it('accepts grants, a grant condition (one or a list), token_hash and on_state_error', async () => {
    expect(await errors(base(`${GRANTS}\nadmin: { listen: 127.0.0.1:0, token_hash: "${'a'.repeat(64)}" }`, '{ grant: [prod-db-admin] }', '    on_state_error: allow'))).toEqual([]);
    const compiled = await compileConfig(parseConfigText(base(GRANTS), 'gw.yaml', tempDir(), {}));
    expect(compiled.grants.get('prod-db-admin')).toMatchObject({ maxDurationMs: 8 * 3_600_000, requestTtlMs: 3_600_000 });
    expect(compiled.routes[0]?.onStateError).toBe('deny');
  });

  it('refuses a grant condition naming no configured grant', async () => {
    expect(await errors(base(''))).toEqual(['routes[0].authorize.allow[0].grant: unknown grant "prod-db-admin" (define it under grants)']);
  });

  it('refuses unknown keys and bad values', async () => {
    expect((await errors(base('grants:\n  prod-db-admin: { approvers: [dba], max_duration: 8h, approvals: 2 }'))).join()).toContain('grants.prod-db-admin');
    expect((await errors(base('grants:\n  prod-db-admin: { approvers: [], max_duration: 8h }'))).join()).toContain('grants.prod-db-admin.approvers');
    expect((await errors(base('grants:\n  prod-db-admin: { approvers: [dba] }'))).join()).toContain('grants.prod-db-admin.max_duration');
    expect((await errors(base(`${GRANTS}\nadmin: { listen: 127.0.0.1:0, token_hash: "not-hex" }`))).join()).toContain('admin.token_hash');
    expect((await errors(base(`${GRANTS}\nadmin: { listen: 127.0.0.1:0, token_hash: "${'A'.repeat(64)}" }`))).join()).toContain('admin.token_hash');
    expect((await errors(base(GRANTS, '{ grant: prod-db-admin }', '    on_state_error: maybe'))).join()).toContain('routes[0].on_state_error');
  });

  it('refuses an unknown provider in grants.<name>.authenticate', async () => {
    expect(await errors(base('grants:\n  prod-db-admin: { approvers: [dba], max_duration: 8h, authenticate: [nope] }'))).toEqual([
      'grants.prod-db-admin.authenticate[0]: unknown identity provider "nope"',
    ]);
  });
});
