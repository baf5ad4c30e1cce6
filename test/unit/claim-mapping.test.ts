// Provider `claims:` blocks (src/authn/claim-mapping.ts) and rule `claims` paths (src/core/claim-path.ts):
// exact top-level names first, else dotted paths, `{ path }` segments with dots; several group sources merged
// and de-duplicated in order; hostile values (objects with toString, huge arrays, prototype paths) ignored
// or refused, never read through a prototype.
import { describe, expect, it } from 'vitest';
import { compileClaimMapping, MAX_GROUPS, type ClaimsConfig } from '../../src/authn/claim-mapping.ts';
import { claimReader, hasGroupsOverage } from '../../src/core/claim-path.ts';
import { compilePolicy } from '../../src/authz/policy.ts';
import type { Identity } from '../../src/core/identity.ts';
import { configSchema } from '../../src/config/schema.ts';

const KEYCLOAK = {
  sub: 'u-1',
  email: 'kc@corp.example',
  email_verified: true,
  realm_access: { roles: ['offline_access', 'admin'] },
  resource_access: { gw: { roles: ['admin', 'reader'] }, 'my.client': { roles: ['writer'] } },
  groups: ['/eng', 'admin'],
};

function mapping(claims: Partial<Record<keyof ClaimsConfig, unknown>>) {
  const cfg = configSchema.parse({
    listen: { address: '127.0.0.1:0', plaintext: true },
    identity_providers: { kc: { type: 'jwt', issuer: 'https://kc.example', audiences: ['gw'], claims } },
    routes: [{ name: 'r', upstream: { url: 'http://127.0.0.1:9' } }],
  });
  const p = cfg.identity_providers.kc;
  if (p?.type !== 'jwt') throw new Error('no provider');
  return compileClaimMapping(p.claims);
}

function schemaError(claims: unknown): string | undefined {
  const r = configSchema.safeParse({
    listen: { address: '127.0.0.1:0', plaintext: true },
    identity_providers: { kc: { type: 'jwt', issuer: 'https://kc.example', audiences: ['gw'], claims } },
    routes: [{ name: 'r', upstream: { url: 'http://127.0.0.1:9' } }],
  });
  return r.success ? undefined : JSON.stringify(r.error.issues);
}

describe('claim sources', () => {
  it('defaults: sub, email, email_verified, groups (today’s single-string form)', () => {
    const m = mapping({});
    expect(m.subject(KEYCLOAK)).toBe('u-1');
    expect(m.email(KEYCLOAK)).toBe('kc@corp.example');
    expect(m.emailVerified(KEYCLOAK)).toBe(true);
    expect(m.groups(KEYCLOAK)).toEqual(['/eng', 'admin']);
    expect(mapping({ groups: 'roles' }).groups({ roles: 'solo' })).toEqual(['solo']);
  });

  it('Keycloak: realm and client roles and groups merged, de-duplicated, order kept', () => {
    const m = mapping({ groups: ['realm_access.roles', 'resource_access.gw.roles', 'groups'] });
    expect(m.groups(KEYCLOAK)).toEqual(['offline_access', 'admin', 'reader', '/eng']);
    expect(m.reads).toEqual(expect.arrayContaining(['realm_access', 'resource_access', 'groups', 'sub', 'email']));
  });

  it('{ path } segments may hold dots; a dotted string would not find them', () => {
    expect(mapping({ groups: [{ path: ['resource_access', 'my.client', 'roles'] }] }).groups(KEYCLOAK)).toEqual(['writer']);
    expect(mapping({ groups: 'resource_access.my.client.roles' }).groups(KEYCLOAK)).toEqual([]);
  });

  it('an exact top-level name wins over the dotted path (Auth0-style namespaced claims)', () => {
    const claims = { 'https://example.com/groups': ['auth0-admins'], 'a.b': ['exact'], a: { b: ['nested'] } };
    expect(mapping({ groups: 'https://example.com/groups' }).groups(claims)).toEqual(['auth0-admins']);
    expect(mapping({ groups: 'a.b' }).groups(claims)).toEqual(['exact']);
    expect(mapping({ groups: 'a.b' }).groups({ a: { b: ['nested'] } })).toEqual(['nested']);
    expect(mapping({ groups: { path: ['a.b'] } }).groups(claims)).toEqual(['exact']);
  });

  it('subject and email from paths; the first source present wins', () => {
    const m = mapping({ subject: ['oid', 'sub'], email: { path: ['profile', 'mail'] } });
    expect(m.subject({ sub: 's', oid: 'o-1' })).toBe('o-1');
    expect(m.subject({ sub: 's' })).toBe('s');
    expect(m.subject({ sub: '' })).toBeUndefined();
    expect(m.subject({ sub: 42 })).toBeUndefined();
    expect(m.email({ profile: { mail: 'p@corp.example' } })).toBe('p@corp.example');
    expect(m.emailVerified({ profile: { mail: 'p@corp.example' }, email_verified: 'true' })).toBe(false);
  });

  it('hostile values: objects with toString, numbers, nested arrays, huge arrays', () => {
    const m = mapping({ groups: ['groups', 'roles'] });
    const evil = { toString: () => 'admin', valueOf: () => 'admin' };
    expect(m.groups({ groups: [evil, 1, true, null, ['admin'], { admin: true }, '', 'x'.repeat(5000), 'ok'] })).toEqual(['ok']);
    expect(m.groups({ groups: evil })).toEqual([]);
    expect(m.groups({ groups: Array.from({ length: MAX_GROUPS }, (_, i) => `g${i}`) })?.length).toBe(MAX_GROUPS);
    expect(m.groups({ groups: Array.from({ length: MAX_GROUPS + 1 }, (_, i) => `g${i}`) })).toBeNull();
    // Two sources each under the cap, together over it: refused too (never silently cut).
    const half = (p: string) => Array.from({ length: 600 }, (_, i) => `${p}${i}`);
    expect(m.groups({ groups: half('a'), roles: half('b') })).toBeNull();
    // 10 million entries are never walked.
    const huge = new Array(10_000_000);
    const t0 = performance.now();
    expect(m.groups({ groups: huge })).toBeNull();
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('never reads through a prototype', () => {
    const polluted = JSON.parse('{"sub":"u","__proto__":{"roles":["admin"]}}') as Record<string, unknown>;
    expect(mapping({ groups: 'roles' }).groups(polluted)).toEqual([]);
    expect(claimReader('constructor.name')({})).toBeUndefined();
    expect(claimReader('toString')({})).toBeUndefined();
    expect(claimReader({ path: ['a', 'length'] })({ a: 'abc' })).toBeUndefined();
    expect(claimReader('a.0')({ a: ['x'] })).toBeUndefined();
    expect(claimReader('hasOwnProperty')(Object.create({ hasOwnProperty: ['admin'] }) as Record<string, unknown>)).toBeUndefined();
  });

  it('refuses forbidden or empty path segments at load', () => {
    expect(schemaError({ groups: '__proto__.roles' })).toMatch(/forbidden/);
    expect(schemaError({ groups: ['groups', { path: ['constructor'] }] })).toMatch(/forbidden/);
    expect(schemaError({ groups: 'a..b' })).toMatch(/empty or forbidden/);
    expect(schemaError({ groups: [] })).toBeDefined();
    expect(schemaError({ groups: ['realm_access.roles', { path: ['resource_access', 'my.client', 'roles'] }] })).toBeUndefined();
  });
});

describe('rule conditions on claims paths, and the groups overage', () => {
  const identity = (claims: Record<string, unknown>): Identity => ({
    subject: 'u', provider: 'kc', issuer: undefined, method: 'jwt', email: undefined, emailVerified: false, groups: [], claims,
    spiffeId: undefined, authTime: undefined, amr: [], acr: undefined, expiresAt: undefined,
  });
  function policy(authorize: unknown) {
    const cfg = configSchema.parse({ listen: { address: '127.0.0.1:0', plaintext: true }, routes: [{ name: 'r', upstream: { url: 'http://127.0.0.1:9' }, authorize }] });
    return compilePolicy(cfg.routes[0]?.authorize as never, { routePath: '', mfa: { amr: new Set(), acr: new Set() } });
  }
  const run = (p: ReturnType<typeof policy>, claims: Record<string, unknown>) =>
    p.evaluate({ identity: identity(claims), method: 'GET', path: '/', clientIp: '127.0.0.1', nowMs: 0, device: () => undefined });

  it('claims.realm_access.roles: nested path; an exact dotted top-level name first', () => {
    const p = policy({ allow: [{ claims: { 'realm_access.roles': { contains: 'admin' } } }] });
    expect(run(p, KEYCLOAK).allow).toBe(true);
    expect(run(p, { realm_access: { roles: ['reader'] } }).allow).toBe(false);
    expect(run(p, { 'realm_access.roles': ['admin'], realm_access: { roles: [] } }).allow).toBe(true);
    expect(run(p, { 'realm_access.roles': ['reader'], realm_access: { roles: ['admin'] } }).allow).toBe(false);
    const proto = policy({ allow: [{ claims: { 'constructor.name': 'Object' } }] });
    expect(run(proto, {}).reasons[0]?.reason).toBe('claims-unauthorized');
  });

  it('an identity with an unresolved overage is denied everywhere with reason groups-overage', () => {
    const p = policy({ allow: [{ authenticated: true }] });
    const overage = { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'http://evil.example/groups' } } };
    expect(hasGroupsOverage(overage)).toBe(true);
    expect(hasGroupsOverage({ _claim_names: {} })).toBe(false);
    expect(hasGroupsOverage(JSON.parse('{"_claim_names":{"__proto__":{"groups":"x"}}}'))).toBe(false);
    expect(run(p, overage)).toEqual({ allow: false, rule: undefined, reasons: [{ rule: '-', reason: 'groups-overage' }] });
    expect(run(p, {}).allow).toBe(true);
  });
});

describe('groups_overage and pass_token', () => {
  const config = (passToken: boolean, overage: boolean) =>
    configSchema.parse({
      listen: { address: '127.0.0.1:0', plaintext: true },
      identity_providers: {
        entra: {
          type: 'oidc', issuer: 'https://login.microsoftonline.com/t/v2.0', client_id: 'c', client_secret: 's',
          ...(overage ? { groups_overage: { endpoint: 'https://graph.microsoft.com/v1.0' } } : {}),
        },
      },
      session: { secret: 'x'.repeat(40) },
      routes: [{ name: 'r', upstream: { url: 'http://127.0.0.1:9' }, authenticate: ['entra'], authorize: { allow: [{ authenticated: true }] }, identity_headers: { pass_token: passToken } }],
    });

  it('a route passing the session token of a groups_overage provider is refused at load', async () => {
    const { crossKeyProblems } = await import('../../src/config/cross-checks.ts');
    const problems = crossKeyProblems(config(true, true));
    expect(problems.map((p) => [p.code, p.path.join('.')])).toEqual([['CFG_CONFLICT', 'routes.0.identity_headers.pass_token']]);
    expect(problems[0]?.message).toMatch(/Graph-audience/);
    expect(crossKeyProblems(config(false, true))).toEqual([]);
    expect(crossKeyProblems(config(true, false))).toEqual([]);
  });

  it('groups_overage.endpoint must be an http(s) URL', () => {
    expect(() => configSchema.parse({
      listen: { address: '127.0.0.1:0', plaintext: true },
      identity_providers: { e: { type: 'oidc', issuer: 'https://i', client_id: 'c', client_secret: 's', groups_overage: { endpoint: 'file:///etc/passwd' } } },
      routes: [{ name: 'r', upstream: { url: 'http://127.0.0.1:9' } }],
    })).toThrow();
  });
});

describe('params bound to claims paths', () => {
  it('claims.a.b in params: exact top-level name first, else the path; own properties only', async () => {
    const { identityField } = await import('../../src/authz/params.ts');
    const id = (claims: Record<string, unknown>) => ({ claims }) as unknown as Identity;
    const read = identityField('claims.org.tenants');
    expect(read(id({ org: { tenants: ['t1', 2, { x: 1 }] } }))).toEqual(['t1', '2']);
    expect(read(id({ 'org.tenants': 't9', org: { tenants: ['t1'] } }))).toEqual(['t9']);
    expect(read(id(JSON.parse('{"org": {"__proto__": {"tenants": ["t1"]}}}')))).toBeUndefined();
    expect(identityField('claims.constructor')(id({}))).toBeUndefined();
  });
});

describe('type github at load', () => {
  const base = (route: Record<string, unknown>, gh: Record<string, unknown> = {}) => ({
    listen: { address: '127.0.0.1:0', plaintext: true },
    identity_providers: { gh: { type: 'github', client_id: 'c', client_secret: 's', allowed_organizations: ['acme'], ...gh } },
    session: { secret: 'x'.repeat(40) },
    routes: [{ name: 'r', upstream: { url: 'http://127.0.0.1:9' }, authenticate: ['gh'], authorize: { allow: [{ authenticated: true }] }, ...route }],
  });

  it('step_up on a GitHub route is refused (a GitHub login carries no acr: it would loop)', async () => {
    const { crossKeyProblems } = await import('../../src/config/cross-checks.ts');
    const problems = crossKeyProblems(configSchema.parse(base({ step_up: { acr: 'mfa' } })));
    expect(problems.map((p) => [p.code, p.path.join('.')])).toEqual([['CFG_CONFLICT', 'routes.0.step_up']]);
    expect(crossKeyProblems(configSchema.parse(base({})))).toEqual([]);
  });

  it('allowed_organizations is required; membership_ttl defaults to 10m; url to github.com', () => {
    const cfg = configSchema.parse(base({}));
    const gh = cfg.identity_providers.gh;
    expect(gh?.type === 'github' && [gh.url, gh.membership_ttl, gh.scopes]).toEqual(['https://github.com', 600_000, ['read:org', 'user:email']]);
    const { allowed_organizations: _a, ...without } = base({}).identity_providers.gh;
    expect(configSchema.safeParse({ ...base({}), identity_providers: { gh: without } }).success).toBe(false);
    expect(configSchema.safeParse(base({}, { allowed_organizations: [] })).success).toBe(false);
    expect(configSchema.safeParse(base({}, { allowed_organizations: ['../evil'] })).success).toBe(false);
  });

  it('API endpoints: api.github.com for github.com, <url>/api/v3 for Enterprise Server; https only off loopback', async () => {
    const { githubEndpoints } = await import('../../src/authn/oidc/github.ts');
    expect(githubEndpoints('https://github.com')).toEqual({ web: 'https://github.com', api: 'https://api.github.com' });
    expect(githubEndpoints('https://ghe.example.com/')).toEqual({ web: 'https://ghe.example.com', api: 'https://ghe.example.com/api/v3' });
    expect(() => githubEndpoints('http://ghe.example.com')).toThrow(/https/);
    expect(() => githubEndpoints('https://ghe.example.com/?x=1')).toThrow(/plain/);
    expect(githubEndpoints('http://127.0.0.1:8080').api).toBe('http://127.0.0.1:8080/api/v3');
  });
});
