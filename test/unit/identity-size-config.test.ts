// Config and compile-time parts of "any size of identity": the header budget of split session cookies,
// groups_filter patterns (checked and compiled at load), the filter itself, the claims sessions keep, and
// the audit-config finding for a filter that cuts groups.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { loadConfigFile } from '../../src/config/index.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { compileConfig, type CompiledConfig } from '../../src/pipeline/compile.ts';
import { compileGroupsFilter } from '../../src/proxy/groups-filter.ts';
import { sessionClaimNames, newlyReadClaims } from '../../src/authn/oidc/session-claims.ts';
import { compileClaimMapping } from '../../src/authn/claim-mapping.ts';
import { postureFindings } from '../../src/cli/posture/checks.ts';
import type { Identity } from '../../src/core/identity.ts';
import { tempDir } from '../helpers/gateway.ts';

const OIDC = `identity_providers:
  corp: { type: oidc, issuer: "https://idp.example.com", client_id: gw, client_secret: "a-client-secret-of-some-length" }
session: { secret: "a-session-secret-of-at-least-32-characters!!" }`;

const route = (identityHeaders = '', authorize = 'authorize: { allow: [{ authenticated: true }] }') => `routes:
  - name: app
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [corp]
    ${authorize}
    ${identityHeaders}`;

async function compile(text: string): Promise<CompiledConfig> {
  return await compileConfig(parseConfigText(text, 'gw.yaml', tempDir(), {}));
}

async function problems(text: string): Promise<Array<[string, unknown]>> {
  try {
    await compile(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p: ConfigProblem) => [p.code, p.keyPath]);
  }
  throw new Error('config was accepted');
}

describe('listen.limits.max_header_bytes and split session cookies', () => {
  it('refused when sealed sessions (no state.redis) could not be read back in three cookies', async () => {
    const listen = 'listen: { address: 127.0.0.1:0, plaintext: true, limits: { max_header_bytes: 12000 } }';
    expect(await problems(`${listen}\n${OIDC}\n${route()}`)).toEqual([['CFG_BAD_VALUE', ['listen', 'limits', 'max_header_bytes']]]);
  });

  it('accepted with the default (16 KiB), and with state.redis whatever the budget', async () => {
    await compile(`listen: { address: 127.0.0.1:0, plaintext: true }\n${OIDC}\n${route()}`);
    await compile(`listen: { address: 127.0.0.1:0, plaintext: true, limits: { max_header_bytes: 8192 } }\nstate: { redis: "redis://127.0.0.1:1" }\n${OIDC}\n${route()}`);
  });
});

describe('groups_filter patterns', () => {
  const listen = 'listen: { address: 127.0.0.1:0, plaintext: true }';
  it('a /regex/ that does not compile is a config error at its place, globally or per route', async () => {
    expect(await problems(`${listen}\nidentity_headers: { groups_filter: { include: [ok-, "/a(b/"] } }\n${OIDC}\n${route()}`)).toEqual([
      ['CFG_BAD_VALUE', ['identity_headers', 'groups_filter', 'include', 1]],
    ]);
    const perRoute = await problems(`${listen}\n${OIDC}\n${route('identity_headers: { groups_filter: { include: ["/[z-a]/"], max: 5 } }')}`);
    expect(perRoute).toEqual([['CFG_BAD_VALUE', ['routes', 0, 'identity_headers', 'groups_filter', 'include', 0]]]);
  });

  it('max must be a positive integer; include, when given, not empty', async () => {
    expect((await problems(`${listen}\n${OIDC}\n${route('identity_headers: { groups_filter: { max: 0 } }')}`))[0]?.[1]).toEqual(['routes', 0, 'identity_headers', 'groups_filter', 'max']);
    expect((await problems(`${listen}\n${OIDC}\n${route('identity_headers: { groups_filter: { include: [] } }')}`))[0]?.[1]).toEqual(['routes', 0, 'identity_headers', 'groups_filter', 'include']);
  });

  it('the route uses its own filter, else the global one (compiled once for every route)', async () => {
    const c = await compile(`${listen}\nidentity_headers: { groups_filter: { include: [a-] } }\n${OIDC}
routes:
  - { name: one, match: { path: /one }, upstream: { url: "http://127.0.0.1:9" }, authenticate: [corp], authorize: { allow: [{ authenticated: true }] } }
  - { name: two, match: { path: /two }, upstream: { url: "http://127.0.0.1:9" }, authenticate: [corp], authorize: { allow: [{ authenticated: true }] } }
  - { name: own, match: { path: /own }, upstream: { url: "http://127.0.0.1:9" }, authenticate: [corp], authorize: { allow: [{ authenticated: true }] }, identity_headers: { groups_filter: { max: 2 } } }
  - { name: pub, match: { path: /pub }, upstream: { url: "http://127.0.0.1:9" }, public: true }`);
    const [one, two, own] = c.routes;
    expect(one?.groupsFilter).not.toBeNull();
    expect(one?.groupsFilter).toBe(two?.groupsFilter);
    expect(own?.groupsFilter?.key).toBe(JSON.stringify([null, 2]));
    expect(own?.identityHeaders.groupsTruncated).toBe('X-ZT-Groups-Truncated');
  });
});

describe('the groups filter', () => {
  const identity = (groups: string[]): Identity => ({ groups: Object.freeze(groups) }) as unknown as Identity;

  it('prefixes and regexes, de-duplicated, sorted by code unit (not locale), cut at max', () => {
    const f = compileGroupsFilter({ include: ['eng-', '/^Ops$/i', '/-admin$/'], max: 4 });
    const v = f.apply(identity(['sales', 'eng-b', 'OPS', 'eng-a', 'db-admin', 'eng-b', 'Eng-c', 'ops', 'admins', 'x-admin-y']));
    expect(v.groups).toEqual(['OPS', 'db-admin', 'eng-a', 'eng-b']);
    expect(v.truncated).toBe(true);
    expect(Object.isFrozen(v.groups)).toBe(true);
  });

  it('exactly max groups is not truncated; no include passes every group; the view is computed once per identity', () => {
    const f = compileGroupsFilter({ max: 3 });
    const id = identity(['c', 'b', 'a']);
    const v = f.apply(id);
    expect(v).toEqual({ groups: ['a', 'b', 'c'], truncated: false, filter: JSON.stringify([null, 3]) });
    expect(f.apply(id)).toBe(v);
    expect(compileGroupsFilter({ include: ['z'] }).apply(id)).toEqual({ groups: [], truncated: false, filter: JSON.stringify([['z'], null]) });
  });

  it('a group named like a regex is a prefix unless it is /…/', () => {
    const f = compileGroupsFilter({ include: ['/x', 'a.b'] });
    expect(f.apply(identity(['/x/y', 'axb', 'a.bc', 'x'])).groups).toEqual(['/x/y', 'a.bc']);
  });
});

describe('the claims sessions keep', () => {
  it('claim mappings, rule claims and claims.<path> references (top-level names), identity basics and keep_claims', async () => {
    const listen = 'listen: { address: 127.0.0.1:0, plaintext: true }';
    const text = `${listen}
identity_providers:
  corp: { type: oidc, issuer: "https://idp.example.com", client_id: gw, client_secret: "a-client-secret-of-some-length", claims: { groups: roles, email: mail } }
session: { secret: "a-session-secret-of-at-least-32-characters!!", keep_claims: [name, picture] }
routes:
  - name: app
    match: { path: /t/:tenant }
    upstream: { url: "http://127.0.0.1:9" }
    authenticate: [corp]
    authorize:
      deny: [{ claims: { "org.unit": sales } }]
      allow: [{ params: { tenant: claims.tenants.ids }, query_params: { team: claims.team } }]`;
    const { config } = parseConfigText(text, 'gw.yaml', tempDir(), {});
    const corp = config.identity_providers.corp as { claims: Parameters<typeof compileClaimMapping>[0] };
    const names = sessionClaimNames(config, [compileClaimMapping(corp.claims)]);
    // A dotted path is read as a claim of that exact name first, else by its first segment: both are kept.
    // `_claim_names` stays so a group overage is never mistaken for no groups.
    expect([...names].sort()).toEqual(
      ['_claim_names', 'acr', 'amr', 'auth_time', 'email_verified', 'mail', 'name', 'org', 'org.unit', 'picture', 'roles', 'sub', 'team', 'tenants', 'tenants.ids'],
    );
    expect(newlyReadClaims(undefined, names)).toEqual([]);
    expect(newlyReadClaims(new Set(['roles', 'mail']), new Set(['roles', 'mail', 'zeta', 'alpha']))).toEqual(['alpha', 'zeta']);
  });
});

describe('audit-config', () => {
  const findings = (yaml: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'ztgw-idsize-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, yaml);
    return postureFindings(loadConfigFile(file, {})).filter((f) => f.id === 'groups-filter-truncates');
  };
  const listen = 'listen: { address: 127.0.0.1:0, plaintext: true }';

  it('warns for each authenticated route whose groups may be cut at max, at the filter that cuts', () => {
    const global = findings(`${listen}\nidentity_headers: { groups_filter: { include: [a-], max: 50 } }\n${OIDC}\n${route()}`);
    expect(global.map((f) => [f.severity, f.path, f.route])).toEqual([['medium', 'identity_headers.groups_filter.max', 'app']]);
    expect(global[0]?.message).toContain('50');
    const own = findings(`${listen}\n${OIDC}\n${route('identity_headers: { groups_filter: { max: 10 } }')}`);
    expect(own.map((f) => f.path)).toEqual(['routes[0].identity_headers.groups_filter.max']);
  });

  it('no finding without max', () => {
    expect(findings(`${listen}\nidentity_headers: { groups_filter: { include: [a-] } }\n${OIDC}\n${route()}`)).toEqual([]);
  });
});
