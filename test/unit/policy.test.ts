// Route policies compiled with compilePolicy: every condition allowed and denied, deny overrides allow,
// default deny with the reasons of every failed allow rule; config errors located by line and column.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../src/core/identity.ts';
import { loadDeviceInventory, type Device } from '../../src/authz/devices.ts';
import type { PolicyInput } from '../../src/authz/input.ts';
import { compilePolicy, type Decision, type Policy } from '../../src/authz/policy.ts';
import { REASONS, type Reason } from '../../src/core/reasons.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';

const NOW = Date.parse('2026-01-14T12:00:00Z'); // a Wednesday, noon UTC

function identity(over: Partial<Identity> = {}): Identity {
  return {
    subject: 'alice',
    provider: 'corp',
    issuer: 'https://idp.example.com',
    method: 'jwt',
    email: undefined,
    emailVerified: false,
    groups: [],
    claims: {},
    spiffeId: undefined,
    authTime: undefined,
    amr: [],
    acr: undefined,
    expiresAt: undefined,
    ...over,
  };
}

type InputOver = Partial<Omit<PolicyInput, 'identity'>> & { identity?: Identity | null };
function input(over: InputOver = {}): PolicyInput {
  return { identity: identity(), method: 'GET', path: '/', clientIp: '127.0.0.1', nowMs: NOW, device: () => undefined, ...over };
}

/** Parses `authorize` through the real config schema (defaults included) and compiles it. */
function policy(authorize: unknown, opts: { routePath?: string; authz?: unknown } = {}): Policy {
  const cfg = configSchema.parse({
    listen: { address: '127.0.0.1:0', plaintext: true },
    ...(opts.authz ? { authz: opts.authz } : {}),
    routes: [{ name: 'r', upstream: { url: 'http://127.0.0.1:9' }, authorize }],
  });
  const parsed = cfg.routes[0]?.authorize;
  if (!parsed) throw new Error('no authorize');
  return compilePolicy(parsed, { routePath: opts.routePath ?? '', mfa: { amr: new Set(cfg.authz.mfa.amr), acr: new Set(cfg.authz.mfa.acr) } });
}

const ALLOWED: Decision = { allow: true, rule: 'allow[0]', reasons: [{ rule: 'allow[0]', reason: 'rule-matched' }] };
const denied = (...reasons: Reason[]): Decision => ({ allow: false, rule: undefined, reasons: reasons.map((reason) => ({ rule: 'allow[0]', reason })) });

interface Case {
  name: string;
  rule: Record<string, unknown>;
  input: InputOver;
  /** null: allowed; otherwise the reasons (of the one allow rule) for the default deny. */
  want: Reason[] | null;
  opts?: { routePath?: string; authz?: unknown };
}

function check(c: Case): void {
  const d = policy({ allow: [c.rule] }, c.opts).evaluate(input(c.input));
  expect(d).toEqual(c.want === null ? ALLOWED : denied(...c.want));
}

const verified = (email: string) => identity({ email, emailVerified: true });
const unverified = (email: string) => identity({ email, emailVerified: false });

describe('identity conditions', () => {
  it.each<Case>([
    { name: 'authenticated: true, identity present', rule: { authenticated: true }, input: {}, want: null },
    { name: 'authenticated: true, anonymous', rule: { authenticated: true }, input: { identity: null }, want: ['unauthenticated'] },
    { name: 'authenticated: false, anonymous', rule: { authenticated: false }, input: { identity: null }, want: null },
    { name: 'authenticated: false, identity present', rule: { authenticated: false }, input: {}, want: ['authenticated'] },

    { name: 'subject single value matches', rule: { subject: 'alice' }, input: {}, want: null },
    { name: 'subject single value differs', rule: { subject: 'bob' }, input: {}, want: ['subject-unauthorized'] },
    { name: 'subject list (any of) matches', rule: { subject: ['bob', 'alice'] }, input: {}, want: null },
    { name: 'subject list (any of) differs', rule: { subject: ['bob', 'trent'] }, input: {}, want: ['subject-unauthorized'] },
    { name: 'subject is exact (no prefix)', rule: { subject: 'ali' }, input: {}, want: ['subject-unauthorized'] },
    { name: 'subject, anonymous', rule: { subject: 'alice' }, input: { identity: null }, want: ['unauthenticated'] },

    { name: 'email verified matches', rule: { email: 'alice@example.com' }, input: { identity: verified('alice@example.com') }, want: null },
    { name: 'email verified, case-insensitive', rule: { email: ['bob@example.com', 'alice@example.com'] }, input: { identity: verified('Alice@Example.COM') }, want: null },
    { name: 'email verified but another address', rule: { email: 'alice@example.com' }, input: { identity: verified('bob@example.com') }, want: ['email-unauthorized'] },
    { name: 'email unverified never matches', rule: { email: 'alice@example.com' }, input: { identity: unverified('alice@example.com') }, want: ['email-unverified'] },
    { name: 'email absent', rule: { email: 'alice@example.com' }, input: {}, want: ['email-unverified'] },
    { name: 'email, anonymous', rule: { email: 'alice@example.com' }, input: { identity: null }, want: ['unauthenticated'] },

    { name: 'email_domain verified matches', rule: { email_domain: 'example.com' }, input: { identity: verified('a@example.com') }, want: null },
    { name: 'email_domain case-insensitive, @ prefix accepted', rule: { email_domain: '@Example.com' }, input: { identity: verified('a@EXAMPLE.com') }, want: null },
    { name: 'email_domain list (any of)', rule: { email_domain: ['corp.io', 'example.com'] }, input: { identity: verified('a@example.com') }, want: null },
    { name: 'email_domain look-alike prefix', rule: { email_domain: 'example.com' }, input: { identity: verified('a@evil-example.com') }, want: ['email-domain-unauthorized'] },
    { name: 'email_domain as a prefix of another domain', rule: { email_domain: 'example.com' }, input: { identity: verified('a@example.com.evil.io') }, want: ['email-domain-unauthorized'] },
    { name: 'email_domain subdomain is another domain', rule: { email_domain: 'example.com' }, input: { identity: verified('a@sub.example.com') }, want: ['email-domain-unauthorized'] },
    { name: 'email_domain takes the part after the LAST @', rule: { email_domain: 'example.com' }, input: { identity: verified('a@example.com@evil.io') }, want: ['email-domain-unauthorized'] },
    { name: 'email_domain: an "email" without @ is no address', rule: { email_domain: 'example.com' }, input: { identity: verified('example.com') }, want: ['email-domain-unauthorized'] },
    { name: 'email_domain: an empty local part is no address', rule: { email_domain: 'example.com' }, input: { identity: verified('@example.com') }, want: ['email-domain-unauthorized'] },
    { name: 'email_domain unverified never matches', rule: { email_domain: 'example.com' }, input: { identity: unverified('a@example.com') }, want: ['email-unverified'] },
    { name: 'email_domain, anonymous', rule: { email_domain: 'example.com' }, input: { identity: null }, want: ['unauthenticated'] },

    { name: 'groups single value', rule: { groups: 'sales' }, input: { identity: identity({ groups: ['eng', 'sales'] }) }, want: null },
    { name: 'groups any of', rule: { groups: ['sales', 'support'] }, input: { identity: identity({ groups: ['support'] }) }, want: null },
    { name: 'groups none of', rule: { groups: ['sales', 'support'] }, input: { identity: identity({ groups: ['eng'] }) }, want: ['groups-unauthorized'] },
    { name: 'groups, no groups', rule: { groups: 'sales' }, input: {}, want: ['groups-unauthorized'] },
    { name: 'groups, exact names only', rule: { groups: 'sales' }, input: { identity: identity({ groups: ['Sales', 'sales-ro'] }) }, want: ['groups-unauthorized'] },
    { name: 'all_groups, has all', rule: { all_groups: ['admins', 'sre'] }, input: { identity: identity({ groups: ['sre', 'x', 'admins'] }) }, want: null },
    { name: 'all_groups, has one', rule: { all_groups: ['admins', 'sre'] }, input: { identity: identity({ groups: ['admins'] }) }, want: ['groups-unauthorized'] },
    { name: 'all_groups, anonymous', rule: { all_groups: ['admins'] }, input: { identity: null }, want: ['unauthenticated'] },

    { name: 'issuer matches', rule: { issuer: 'https://idp.example.com' }, input: {}, want: null },
    { name: 'issuer list, other issuer', rule: { issuer: ['https://a.example', 'https://b.example'] }, input: {}, want: ['issuer-unauthorized'] },
    { name: 'issuer absent (api key)', rule: { issuer: 'https://idp.example.com' }, input: { identity: identity({ issuer: undefined, method: 'api_key' }) }, want: ['issuer-unauthorized'] },
    { name: 'provider matches', rule: { provider: ['keys', 'corp'] }, input: {}, want: null },
    { name: 'provider differs', rule: { provider: 'keys' }, input: {}, want: ['provider-unauthorized'] },
    { name: 'method matches', rule: { method: 'jwt' }, input: {}, want: null },
    { name: 'method list', rule: { method: ['mtls', 'api_key'] }, input: { identity: identity({ method: 'api_key' }) }, want: null },
    { name: 'method differs', rule: { method: 'mtls' }, input: {}, want: ['method-unauthorized'] },
    { name: 'method, anonymous', rule: { method: 'jwt' }, input: { identity: null }, want: ['unauthenticated'] },
  ])('$name', check);
});

describe('claims', () => {
  const withClaims = (claims: Record<string, unknown>) => ({ identity: identity({ claims }) });
  it.each<Case>([
    { name: 'scalar value means equals', rule: { claims: { tenant: 'acme' } }, input: withClaims({ tenant: 'acme' }), want: null },
    { name: 'equals: other value', rule: { claims: { tenant: { equals: 'acme' } } }, input: withClaims({ tenant: 'globex' }), want: ['claims-unauthorized'] },
    { name: 'equals: object form', rule: { claims: { tenant: { equals: 'acme' } } }, input: withClaims({ tenant: 'acme' }), want: null },
    { name: 'equals is strict about types', rule: { claims: { level: 3 } }, input: withClaims({ level: '3' }), want: ['claims-unauthorized'] },
    { name: 'equals number', rule: { claims: { level: 3 } }, input: withClaims({ level: 3 }), want: null },
    { name: 'equals boolean', rule: { claims: { staff: true } }, input: withClaims({ staff: true }), want: null },
    { name: 'equals boolean: truthy string is not true', rule: { claims: { staff: true } }, input: withClaims({ staff: 'true' }), want: ['claims-unauthorized'] },
    { name: 'equals does not look inside arrays', rule: { claims: { roles: 'admin' } }, input: withClaims({ roles: ['admin'] }), want: ['claims-unauthorized'] },
    { name: 'list means one of', rule: { claims: { tenant: ['acme', 'globex'] } }, input: withClaims({ tenant: 'globex' }), want: null },
    { name: 'one_of: none', rule: { claims: { tenant: { one_of: ['acme', 'globex'] } } }, input: withClaims({ tenant: 'initech' }), want: ['claims-unauthorized'] },
    { name: 'one_of: object form', rule: { claims: { tenant: { one_of: ['acme', 'globex'] } } }, input: withClaims({ tenant: 'acme' }), want: null },
    { name: 'contains on an array', rule: { claims: { roles: { contains: 'admin' } } }, input: withClaims({ roles: ['user', 'admin'] }), want: null },
    { name: 'contains on an array: absent', rule: { claims: { roles: { contains: 'admin' } } }, input: withClaims({ roles: ['user', 'administrator'] }), want: ['claims-unauthorized'] },
    { name: 'contains on a scope string', rule: { claims: { scope: { contains: 'write' } } }, input: withClaims({ scope: 'read write' }), want: null },
    { name: 'contains on a scope string: whole words only', rule: { claims: { scope: { contains: 'write' } } }, input: withClaims({ scope: 'read writer rewrite' }), want: ['claims-unauthorized'] },
    { name: 'contains on a non-array non-string', rule: { claims: { scope: { contains: 'write' } } }, input: withClaims({ scope: { write: true } }), want: ['claims-unauthorized'] },
    { name: 'nested path a.b.c', rule: { claims: { 'a.b.c': 'x' } }, input: withClaims({ a: { b: { c: 'x' } } }), want: null },
    { name: 'nested path a.b.c: other value', rule: { claims: { 'a.b.c': 'x' } }, input: withClaims({ a: { b: { c: 'y' } } }), want: ['claims-unauthorized'] },
    { name: 'nested path through an array does not match', rule: { claims: { 'a.0': 'x' } }, input: withClaims({ a: ['x'] }), want: ['claims-unauthorized'] },
    { name: 'a top-level claim named exactly a.b is read first', rule: { claims: { 'a.b': 'x' } }, input: withClaims({ 'a.b': 'x', a: { b: 'y' } }), want: null },
    { name: 'a top-level claim named exactly a.b wins over the path', rule: { claims: { 'a.b': 'y' } }, input: withClaims({ 'a.b': 'x', a: { b: 'y' } }), want: ['claims-unauthorized'] },
    { name: 'missing claim', rule: { claims: { tenant: 'acme' } }, input: withClaims({}), want: ['claims-unauthorized'] },
    { name: 'missing nested claim', rule: { claims: { 'a.b.c': 'x' } }, input: withClaims({ a: { b: 'x' } }), want: ['claims-unauthorized'] },
    { name: 'inherited properties are not claims', rule: { claims: { 'constructor.name': 'Object' } }, input: withClaims({}), want: ['claims-unauthorized'] },
    { name: 'every claim of the rule must hold', rule: { claims: { tenant: 'acme', 'org.role': 'owner' } }, input: withClaims({ tenant: 'acme', org: { role: 'member' } }), want: ['claims-unauthorized'] },
    { name: 'every claim of the rule holds', rule: { claims: { tenant: 'acme', 'org.role': 'owner' } }, input: withClaims({ tenant: 'acme', org: { role: 'owner' } }), want: null },
    { name: 'claims, anonymous', rule: { claims: { tenant: 'acme' } }, input: { identity: null }, want: ['unauthenticated'] },
  ])('$name', check);
});

describe('workload identity (SPIFFE)', () => {
  const spiffe = (id: string | undefined, method: Identity['method'] = 'mtls') => ({ identity: identity({ spiffeId: id, method, subject: id ?? 'x' }) });
  it.each<Case>([
    { name: 'spiffe_id exact', rule: { spiffe_id: 'spiffe://example.org/ns/shop/sa/checkout' }, input: spiffe('spiffe://example.org/ns/shop/sa/checkout'), want: null },
    { name: 'spiffe_id exact: longer id', rule: { spiffe_id: 'spiffe://example.org/ns/shop/sa/checkout' }, input: spiffe('spiffe://example.org/ns/shop/sa/checkout/x'), want: ['spiffe-id-unauthorized'] },
    { name: 'spiffe_id prefix', rule: { spiffe_id: 'spiffe://example.org/ns/shop/*' }, input: spiffe('spiffe://example.org/ns/shop/sa/cart'), want: null },
    { name: 'spiffe_id prefix at segment boundary', rule: { spiffe_id: 'spiffe://example.org/ns/shop/*' }, input: spiffe('spiffe://example.org/ns/shopping/sa/cart'), want: ['spiffe-id-unauthorized'] },
    { name: 'spiffe_id prefix does not match its parent', rule: { spiffe_id: 'spiffe://example.org/ns/shop/*' }, input: spiffe('spiffe://example.org/ns/shop'), want: ['spiffe-id-unauthorized'] },
    { name: 'spiffe_id prefix: other trust domain', rule: { spiffe_id: 'spiffe://example.org/ns/shop/*' }, input: spiffe('spiffe://evil.org/ns/shop/sa/cart'), want: ['spiffe-id-unauthorized'] },
    { name: 'spiffe_id list', rule: { spiffe_id: ['spiffe://example.org/a', 'spiffe://example.org/ns/*'] }, input: spiffe('spiffe://example.org/ns/x'), want: null },
    { name: 'spiffe_id: identity without one', rule: { spiffe_id: 'spiffe://example.org/ns/*' }, input: spiffe(undefined, 'jwt'), want: ['spiffe-id-unauthorized'] },
    { name: 'trust_domain matches', rule: { trust_domain: 'example.org' }, input: spiffe('spiffe://example.org/ns/shop/sa/cart'), want: null },
    { name: 'trust_domain: suffix look-alike', rule: { trust_domain: 'example.org' }, input: spiffe('spiffe://example.org.evil.io/ns/x'), want: ['trust-domain-unauthorized'] },
    { name: 'trust_domain: other domain', rule: { trust_domain: ['a.org', 'b.org'] }, input: spiffe('spiffe://example.org/ns/x'), want: ['trust-domain-unauthorized'] },
    { name: 'trust_domain: no SPIFFE id', rule: { trust_domain: 'example.org' }, input: spiffe(undefined, 'jwt'), want: ['trust-domain-unauthorized'] },
    { name: 'service_callers: mTLS caller', rule: { service_callers: 'spiffe://example.org/ns/shop/sa/checkout' }, input: spiffe('spiffe://example.org/ns/shop/sa/checkout'), want: null },
    { name: 'service_callers: other service', rule: { service_callers: 'spiffe://example.org/ns/shop/sa/checkout' }, input: spiffe('spiffe://example.org/ns/shop/sa/cart'), want: ['service-caller-unauthorized'] },
    { name: 'service_callers: SPIFFE id not proven by mTLS', rule: { service_callers: 'spiffe://example.org/ns/shop/*' }, input: spiffe('spiffe://example.org/ns/shop/sa/checkout', 'jwt'), want: ['service-caller-unauthorized'] },
  ])('$name', check);
});

describe('request conditions', () => {
  it.each<Case>([
    { name: 'source_ip IPv4 CIDR', rule: { source_ip: '10.0.0.0/8' }, input: { clientIp: '10.1.2.3' }, want: null },
    { name: 'source_ip IPv4 outside', rule: { source_ip: '10.0.0.0/8' }, input: { clientIp: '11.0.0.1' }, want: ['source-ip-unauthorized'] },
    { name: 'source_ip single address', rule: { source_ip: '192.0.2.7' }, input: { clientIp: '192.0.2.7' }, want: null },
    { name: 'source_ip single address: neighbour', rule: { source_ip: '192.0.2.7' }, input: { clientIp: '192.0.2.8' }, want: ['source-ip-unauthorized'] },
    { name: 'source_ip list', rule: { source_ip: ['192.0.2.0/24', '10.0.0.0/8'] }, input: { clientIp: '10.9.9.9' }, want: null },
    { name: 'source_ip IPv6 CIDR', rule: { source_ip: '2001:db8::/32' }, input: { clientIp: '2001:db8:1::5' }, want: null },
    { name: 'source_ip IPv6 outside', rule: { source_ip: '2001:db8::/32' }, input: { clientIp: '2001:db9::5' }, want: ['source-ip-unauthorized'] },
    { name: 'source_ip IPv4-mapped IPv6 client', rule: { source_ip: '10.0.0.0/8' }, input: { clientIp: '::ffff:10.1.2.3' }, want: null },
    { name: 'source_ip IPv4-mapped outside', rule: { source_ip: '10.0.0.0/8' }, input: { clientIp: '::ffff:11.1.2.3' }, want: ['source-ip-unauthorized'] },
    { name: 'source_ip IPv4 rule vs IPv6 client', rule: { source_ip: '0.0.0.0/0' }, input: { clientIp: '2001:db8::1' }, want: ['source-ip-unauthorized'] },
    { name: 'source_ip holds for anonymous callers too', rule: { source_ip: '127.0.0.0/8' }, input: { identity: null }, want: null },

    { name: 'http_methods single', rule: { http_methods: 'GET' }, input: { method: 'GET' }, want: null },
    { name: 'http_methods list', rule: { http_methods: ['GET', 'HEAD'] }, input: { method: 'HEAD' }, want: null },
    { name: 'http_methods other', rule: { http_methods: ['GET', 'HEAD'] }, input: { method: 'POST' }, want: ['http-method-unauthorized'] },

    { name: 'paths prefix itself', rule: { paths: '/api/admin' }, input: { path: '/api/admin' }, want: null },
    { name: 'paths prefix sub-path', rule: { paths: '/api/admin' }, input: { path: '/api/admin/users/7' }, want: null },
    { name: 'paths prefix with trailing slash', rule: { paths: '/api/admin/' }, input: { path: '/api/admin/users' }, want: null },
    { name: 'paths prefix at segment boundary', rule: { paths: '/api/admin' }, input: { path: '/api/administrator' }, want: ['path-unauthorized'] },
    { name: 'paths: the parent is not under it', rule: { paths: '/api/admin' }, input: { path: '/api' }, want: ['path-unauthorized'] },
    { name: 'paths are case-sensitive', rule: { paths: '/api/admin' }, input: { path: '/API/admin' }, want: ['path-unauthorized'] },
    { name: 'paths =exact', rule: { paths: '=/api/admin' }, input: { path: '/api/admin' }, want: null },
    { name: 'paths =exact: sub-path', rule: { paths: '=/api/admin' }, input: { path: '/api/admin/x' }, want: ['path-unauthorized'] },
    { name: 'paths =exact: trailing slash', rule: { paths: '=/api/admin' }, input: { path: '/api/admin/' }, want: ['path-unauthorized'] },
    { name: 'paths list', rule: { paths: ['=/health', '/reports'] }, input: { path: '/reports/q3' }, want: null },
    { name: 'paths / covers the route', rule: { paths: '/' }, input: { path: '/anything/at/all' }, want: null },
    { name: 'paths under the route path', rule: { paths: '/api/v1/reports' }, input: { path: '/api/v1/reports/x' }, want: null, opts: { routePath: '/api/v1' } },
  ])('$name', check);
});

describe('time condition (through the policy)', () => {
  const office = { time: { days: 'mon-fri', hours: '08:00-19:00', tz: 'Europe/Berlin' } };
  it.each<Case>([
    { name: 'Monday 10:00 Berlin (winter, UTC+1)', rule: office, input: { nowMs: Date.parse('2026-01-12T09:00:00Z') }, want: null },
    { name: 'Monday 07:59 Berlin', rule: office, input: { nowMs: Date.parse('2026-01-12T06:59:00Z') }, want: ['time-unauthorized'] },
    { name: 'Monday 10:00 Berlin (summer, UTC+2)', rule: office, input: { nowMs: Date.parse('2026-07-13T08:00:00Z') }, want: null },
    { name: 'Sunday 10:00 Berlin', rule: office, input: { nowMs: Date.parse('2026-01-11T09:00:00Z') }, want: ['time-unauthorized'] },
  ])('$name', check);
});

describe('mfa', () => {
  it.each<Case>([
    { name: 'amr contains otp', rule: { mfa: true }, input: { identity: identity({ amr: ['pwd', 'otp'] }) }, want: null },
    { name: 'amr contains hwk (default set)', rule: { mfa: true }, input: { identity: identity({ amr: ['hwk'] }) }, want: null },
    { name: 'amr password only', rule: { mfa: true }, input: { identity: identity({ amr: ['pwd'] }) }, want: ['mfa-required'] },
    { name: 'no amr, no acr', rule: { mfa: true }, input: {}, want: ['mfa-required'] },
    { name: 'an API key is not MFA', rule: { mfa: true }, input: { identity: identity({ method: 'api_key', amr: ['api_key'] }) }, want: ['mfa-required'] },
    { name: 'acr not configured: any acr is not MFA', rule: { mfa: true }, input: { identity: identity({ acr: 'urn:gold' }) }, want: ['mfa-required'] },
    {
      name: 'acr in the configured set',
      rule: { mfa: true },
      input: { identity: identity({ acr: 'urn:gold' }) },
      want: null,
      opts: { authz: { mfa: { acr: ['urn:gold', 'urn:platinum'] } } },
    },
    {
      name: 'acr outside the configured set',
      rule: { mfa: true },
      input: { identity: identity({ acr: 'urn:bronze' }) },
      want: ['mfa-required'],
      opts: { authz: { mfa: { acr: ['urn:gold'] } } },
    },
    {
      name: 'configured amr set replaces the default',
      rule: { mfa: true },
      input: { identity: identity({ amr: ['otp'] }) },
      want: ['mfa-required'],
      opts: { authz: { mfa: { amr: ['hwk'] } } },
    },
    { name: 'mfa, anonymous', rule: { mfa: true }, input: { identity: null }, want: ['unauthenticated'] },
  ])('$name', check);
});

describe('device', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ztgw-devices-'));
  const file = join(dir, 'devices.yaml');
  writeFileSync(
    file,
    `devices:
  - { id: laptop-known, owner: alice }
  - { id: laptop-trusted, owner: alice, trusted: true }
  - { id: laptop-stolen, owner: alice, trusted: true, revoked: true }
`,
  );
  const inventory = loadDeviceInventory(file);
  const dev = (id: string) => ({ device: () => inventory.byId(id) });
  it.each<Case>([
    { name: 'known: known device', rule: { device: 'known' }, input: dev('laptop-known'), want: null },
    { name: 'known: trusted device', rule: { device: 'known' }, input: dev('laptop-trusted'), want: null },
    { name: 'known: revoked device', rule: { device: 'known' }, input: dev('laptop-stolen'), want: ['device-revoked'] },
    { name: 'known: unknown device id', rule: { device: 'known' }, input: dev('laptop-other'), want: ['device-unknown'] },
    { name: 'known: no device', rule: { device: 'known' }, input: {}, want: ['device-unknown'] },
    { name: 'trusted: trusted device', rule: { device: 'trusted' }, input: dev('laptop-trusted'), want: null },
    { name: 'trusted: known but untrusted', rule: { device: 'trusted' }, input: dev('laptop-known'), want: ['device-untrusted'] },
    { name: 'trusted: revoked (even if trusted)', rule: { device: 'trusted' }, input: dev('laptop-stolen'), want: ['device-revoked'] },
    { name: 'trusted: unknown', rule: { device: 'trusted' }, input: dev('nope'), want: ['device-unknown'] },
  ])('$name', check);

  it('looks the device up only when a rule asks, and at most once per evaluation', () => {
    let lookups = 0;
    const device = (): Device | undefined => {
      lookups++;
      return inventory.byId('laptop-trusted');
    };
    policy({ allow: [{ groups: 'x' }] }).evaluate(input({ device }));
    expect(lookups).toBe(0);
    const p = policy({ allow: [{ groups: 'x', device: 'known' }, { device: 'trusted', subject: 'alice' }] });
    expect(p.evaluate(input({ device })).allow).toBe(true);
    expect(lookups).toBeGreaterThan(0);
  });

  it('refuses a bad inventory entry', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'devices:\n  - { id: "has space" }\n');
    expect(() => loadDeviceInventory(bad)).toThrow(/devices\.0\.id/);
    writeFileSync(bad, 'devices:\n  - { id: a }\n  - { id: a }\n');
    expect(() => loadDeviceInventory(bad)).toThrow(/duplicate device id "a"/);
  });
});

describe('rules, deny and default deny', () => {
  it('requires every condition of a rule (AND), and any rule (OR)', () => {
    const p = policy({ allow: [{ groups: 'sales', http_methods: 'GET' }, { subject: 'bob' }] });
    const sales = identity({ groups: ['sales'] });
    expect(p.evaluate(input({ identity: sales, method: 'GET' }))).toEqual(ALLOWED);
    expect(p.evaluate(input({ identity: identity({ subject: 'bob' }), method: 'DELETE' }))).toEqual({
      allow: true,
      rule: 'allow[1]',
      reasons: [{ rule: 'allow[1]', reason: 'rule-matched' }],
    });
    expect(p.evaluate(input({ identity: sales, method: 'POST' }))).toEqual({
      allow: false,
      rule: undefined,
      reasons: [
        { rule: 'allow[0]', reason: 'http-method-unauthorized' },
        { rule: 'allow[1]', reason: 'subject-unauthorized' },
      ],
    });
  });

  it('an unverified email is no way around a deny rule on email or email_domain (it still never allows)', () => {
    const p = policy({
      allow: [{ name: 'sales', groups: 'sales' }, { name: 'corp-mail', email_domain: 'corp.example' }],
      deny: [{ name: 'no-contractors', email_domain: 'contractor.example' }, { name: 'not-eve', email: 'eve@corp.example' }],
    });
    const sneaky = identity({ subject: 'sam', groups: ['sales'], email: 'sam@Contractor.example', emailVerified: false });
    expect(p.evaluate(input({ identity: sneaky }))).toEqual({ allow: false, rule: 'no-contractors', reasons: [{ rule: 'no-contractors', reason: 'deny-rule-matched' }] });
    const eve = identity({ subject: 'eve', groups: ['sales'], email: 'eve@corp.example', emailVerified: false });
    expect(p.evaluate(input({ identity: eve })).rule).toBe('not-eve');
    // The same unverified corp address grants nothing through the allow rule.
    const unverifiedCorp = identity({ subject: 'uma', groups: [], email: 'uma@corp.example', emailVerified: false });
    expect(p.evaluate(input({ identity: unverifiedCorp })).allow).toBe(false);
  });

  it('deny overrides allow, and names the deny rule', () => {
    const p = policy({
      allow: [{ name: 'sales', groups: 'sales' }],
      deny: [{ name: 'contractors-never-write', groups: 'contractors', http_methods: ['POST', 'DELETE'] }, { subject: 'mallory' }],
    });
    const carl = identity({ subject: 'carl', groups: ['sales', 'contractors'] });
    expect(p.evaluate(input({ identity: carl, method: 'GET' }))).toEqual({ allow: true, rule: 'sales', reasons: [{ rule: 'sales', reason: 'rule-matched' }] });
    expect(p.evaluate(input({ identity: carl, method: 'POST' }))).toEqual({
      allow: false,
      rule: 'contractors-never-write',
      reasons: [{ rule: 'contractors-never-write', reason: 'deny-rule-matched' }],
    });
    const mallory = identity({ subject: 'mallory', groups: ['sales'] });
    expect(p.evaluate(input({ identity: mallory }))).toEqual({ allow: false, rule: 'deny[1]', reasons: [{ rule: 'deny[1]', reason: 'deny-rule-matched' }] });
  });

  it('a deny rule also applies to callers that no allow rule admits', () => {
    const p = policy({ allow: [{ groups: 'x' }], deny: [{ source_ip: '203.0.113.0/24' }] });
    expect(p.evaluate(input({ clientIp: '203.0.113.5' }))).toEqual({ allow: false, rule: 'deny[0]', reasons: [{ rule: 'deny[0]', reason: 'deny-rule-matched' }] });
  });

  it('default deny lists why every allow rule failed (each failed condition, in order)', () => {
    const p = policy({
      allow: [
        { name: 'admins-with-mfa', groups: 'admins', mfa: true, source_ip: '10.0.0.0/8' },
        { name: 'office-hours', email_domain: 'example.com', time: { days: 'mon-fri', hours: '08:00-19:00', tz: 'Europe/Berlin' } },
        { subject: 'bob' },
      ],
      deny: [{ subject: 'mallory' }],
    });
    const sunday = Date.parse('2026-01-11T10:00:00Z');
    const d = p.evaluate(input({ identity: unverified('alice@example.com'), clientIp: '10.1.1.1', nowMs: sunday }));
    expect(d).toEqual({
      allow: false,
      rule: undefined,
      reasons: [
        { rule: 'admins-with-mfa', reason: 'groups-unauthorized' },
        { rule: 'admins-with-mfa', reason: 'mfa-required' },
        { rule: 'office-hours', reason: 'email-unverified' },
        { rule: 'office-hours', reason: 'time-unauthorized' },
        { rule: 'allow[2]', reason: 'subject-unauthorized' },
      ],
    });
    for (const r of d.reasons) expect(REASONS).toContain(r.reason);
  });

  it('reports the counts of compiled rules', () => {
    const p = policy({ allow: [{ subject: 'a' }, { subject: 'b' }], deny: [{ subject: 'c' }] });
    expect(p.allowRules).toBe(2);
    expect(p.denyRules).toBe(1);
  });

  it.each([
    ['an empty rule', { allow: [{}] }, ['allow', 0], /at least one condition/],
    ['a rule with only a name', { allow: [{ subject: 'a' }], deny: [{ name: 'x' }] }, ['deny', 0], /at least one condition/],
    ['a bad CIDR', { allow: [{ source_ip: ['10.0.0.0/8', '10.0.0.0/33'] }] }, ['allow', 0, 'source_ip'], /invalid prefix length in "10\.0\.0\.0\/33"/],
    ['a bad address', { allow: [{ source_ip: '10.0.0.300' }] }, ['allow', 0, 'source_ip'], /invalid CIDR "10\.0\.0\.300"/],
    ['an unknown time zone', { allow: [{ time: { tz: 'Mars/Olympus' } }] }, ['allow', 0, 'time'], /unknown time zone "Mars\/Olympus"/],
    ['a bad day name', { allow: [{ time: { days: 'mon-fry' } }] }, ['allow', 0, 'time'], /unknown day "fry"/],
    ['a non-SPIFFE spiffe_id', { allow: [{ spiffe_id: 'example.org/ns/x' }] }, ['allow', 0, 'spiffe_id'], /not a SPIFFE ID/],
    ['a bad service caller', { allow: [{ service_callers: 'https://x' }] }, ['allow', 0, 'service_callers'], /not a SPIFFE ID/],
  ])('refuses %s at compile time (ConfigError with the key path)', (_name, authorize, path, message) => {
    let err: unknown;
    try {
      policy(authorize);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).path).toEqual(path);
    expect((err as Error).message).toMatch(message);
  });

  it('refuses paths that are not under the route path', () => {
    expect(() => policy({ allow: [{ paths: '/other' }] }, { routePath: '/api' })).toThrow(/not under the route's path "\/api"/);
    expect(() => policy({ allow: [{ paths: '/apiary' }] }, { routePath: '/api' })).toThrow(ConfigError);
  });
});

// ---- config files: the same errors, located by line and column ----

const PREAMBLE = `listen: { address: 127.0.0.1:0, plaintext: true }
identity_providers:
  corp: { type: jwt, issuer: https://idp.example.com, audiences: [gw], algorithms: [HS256], secret: "0123456789abcdef0123456789abcdef" }
routes:
  - name: app
    match: { path: /api }
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [corp]
`;

async function loadProblems(text: string): Promise<ConfigProblem[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ztgw-policy-'));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, text);
  try {
    await compileConfig(loadConfigFile(file, {}));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('GW_ERR_CONFIG_INVALID');
    return [...(err as ConfigError).problems];
  }
  throw new Error('config was accepted');
}

/** 1-based line and column of the `nth` occurrence of `needle` in `text`. */
function posOf(text: string, needle: string, nth = 1): { line: number; col: number } {
  let at = -1;
  for (let i = 0; i < nth; i++) at = text.indexOf(needle, at + 1);
  if (at < 0) throw new Error(`"${needle}" not in text`);
  const before = text.slice(0, at).split('\n');
  return { line: before.length, col: (before.at(-1) as string).length + 1 };
}

describe('policy errors in a config file', () => {
  it.each([
    {
      name: 'an empty rule {}',
      rules: '    authorize:\n      allow:\n        - {}\n',
      path: 'routes[0].authorize.allow[0]',
      at: '{}',
      message: /at least one condition/,
    },
    {
      name: 'an unknown condition key',
      rules: '    authorize:\n      allow:\n        - subject: alice\n          groupz: [admins]\n',
      path: 'routes[0].authorize.allow[0].groupz',
      at: 'groupz',
      message: /^unknown key$/,
    },
    {
      name: 'an unknown key in a deny rule',
      rules: '    authorize:\n      allow:\n        - authenticated: true\n      deny:\n        - { risk: 0.8 }\n',
      path: 'routes[0].authorize.deny[0].risk',
      at: 'risk',
      message: /^unknown key$/,
    },
    {
      name: 'a bad CIDR',
      rules: '    authorize:\n      allow:\n        - source_ip: 10.0.0.0/33\n',
      path: 'routes[0].authorize.allow[0].source_ip',
      at: '10.0.0.0/33',
      message: /invalid prefix length in "10\.0\.0\.0\/33"/,
    },
    {
      name: 'a bad CIDR in a list',
      rules: '    authorize:\n      allow:\n        - { source_ip: [10.0.0.0/8, 300.1.1.1/8] }\n',
      path: 'routes[0].authorize.allow[0].source_ip',
      at: '[10.0.0.0/8',
      message: /invalid CIDR "300\.1\.1\.1\/8"/,
    },
    {
      name: 'an unknown time zone',
      rules: '    authorize:\n      allow:\n        - time: { hours: "08:00-19:00", tz: Europe/Berlln }\n',
      path: 'routes[0].authorize.allow[0].time',
      at: '{ hours',
      message: /unknown time zone "Europe\/Berlln"/,
    },
    {
      name: 'a bad day name',
      rules: '    authorize:\n      allow:\n        - time:\n            days: [mon, wednesday]\n            tz: UTC\n',
      path: 'routes[0].authorize.allow[0].time',
      at: 'days:',
      message: /unknown day "wednesday"/,
    },
    {
      name: 'a day range with three ends',
      rules: '    authorize:\n      allow:\n        - time: { days: mon-wed-fri }\n',
      path: 'routes[0].authorize.allow[0].time',
      at: '{ days',
      message: /invalid day range "mon-wed-fri"/,
    },
    {
      name: 'malformed hours',
      rules: '    authorize:\n      allow:\n        - time: { hours: "8-19" }\n',
      path: 'routes[0].authorize.allow[0].time.hours',
      at: '"8-19"',
      message: /hours look like 08:00-19:00/,
    },
    {
      name: 'hours out of range',
      rules: '    authorize:\n      allow:\n        - time: { hours: "08:00-25:00" }\n',
      path: 'routes[0].authorize.allow[0].time',
      at: '{ hours',
      message: /invalid time "25:00"/,
    },
    {
      name: 'a path rule outside the route',
      rules: '    authorize:\n      allow:\n        - paths: /apiary\n',
      path: 'routes[0].authorize.allow[0].paths',
      at: '/apiary',
      message: /not under the route's path "\/api"/,
    },
    {
      name: 'a route with authenticate but no authorize',
      rules: '',
      path: 'routes[0].authenticate',
      at: '[corp]',
      message: /needs authorize/,
    },
    {
      name: 'deny rules without any allow rule',
      rules: '    authorize:\n      deny:\n        - subject: mallory\n',
      path: 'routes[0].authorize.allow',
      at: 'deny:',
      message: /at least one allow rule/,
    },
    {
      name: 'a device rule without an inventory',
      rules: '    authorize:\n      allow:\n        - device: trusted\n',
      path: 'routes[0].authorize',
      at: 'allow:',
      message: /needs devices\.inventory/,
    },
  ])('$name', async ({ rules, path, at, message }) => {
    const text = PREAMBLE + rules;
    const problems = await loadProblems(text);
    expect(problems).toHaveLength(1);
    const p = problems[0] as ConfigProblem;
    expect(p.path).toBe(path);
    expect(p.message).toMatch(message);
    expect({ line: p.line, col: p.col }).toEqual(posOf(text, at, text.split(at).length - 1));
  });

  it('accepts a valid policy and compiles it onto the route', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztgw-policy-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, `${PREAMBLE}    mode: report-only\n    authorize:\n      allow:\n        - { authenticated: true }\n`);
    const compiled = await compileConfig(loadConfigFile(file, {}));
    const route = compiled.routes[0];
    expect(route?.mode).toBe('report-only');
    expect(route?.policy?.allowRules).toBe(1);
  });
});
