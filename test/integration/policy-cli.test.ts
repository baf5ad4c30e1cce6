// `zt-gateway test` and `zt-gateway explain` as an operator runs them (node bin/zt-gateway.js on dist/):
// output, decisions, reasons and exit codes (0 allow / all passed, 1 deny / a mismatch, 2 usage or input).
// `cli` spawns the built binary; `run` calls the same main() in-process for the tables of messages.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { tempDir } from '../helpers/gateway.ts';

import { ensureBuilt, root, runBuiltCli } from '../helpers/build.ts';
const CRM = join(root, 'config', 'policies', 'crm.yaml');
const CRM_TESTS = join(root, 'config', 'policies', 'crm.test.yaml');


interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const cli = runBuiltCli;

/**
 * The same CLI entry point in-process, with captured output: for the wide tables of messages. What only the
 * process shows (exit status through bin/, stdout/stderr) is covered by the spawned cases.
 */
async function run(args: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (l) => (stdout += `${l}\n`), err: (l) => (stderr += `${l}\n`) });
  return { code, stdout, stderr };
}

const lines = (text: string) => text.split('\n').filter(Boolean);

let dir: string;
function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
function identity(name: string, json: Record<string, unknown>): string {
  return file(`${name}.json`, JSON.stringify(json));
}

beforeAll(() => {
  ensureBuilt();
  dir = tempDir('ztgw-policy-cli-');
});

describe.concurrent('zt-gateway test', () => {
  it('passes the shipped example: 15 passed, 0 failed, exit 0', async () => {
    const r = await cli(['test', CRM_TESTS, '--config', CRM]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out.at(-1)).toBe('15 passed, 0 failed');
    expect(out.filter((l) => l.startsWith('ok   '))).toHaveLength(15);
    expect(out).toContain(
      'ok   contractor in sales still cannot write (expected deny with deny-rule-matched; got deny by contractors-never-write; reasons: contractors-never-write:deny-rule-matched)',
    );
  });

  it('exits 1 and prints FAIL for a wrong expectation or a wrong reason', async () => {
    const tests = file(
      'wrong.test.yaml',
      `tests:
  - name: sales reads accounts
    route: crm
    identity: { subject: alice, groups: [sales], method: jwt }
    request: { method: GET, path: /accounts }
    expect: allow
  - name: sales is wrongly expected to be refused
    route: crm
    identity: { subject: alice, groups: [sales], method: jwt }
    request: { method: GET, path: /accounts }
    expect: deny
  - name: refused, but not for the reason given
    route: crm-admin
    identity: { subject: root, groups: [admins], method: jwt, amr: [pwd] }
    request: { method: GET, path: /admin/users, ip: 10.1.2.3 }
    expect: deny
    reason: source-ip-unauthorized
  - name: a route that does not exist
    route: nope
    expect: allow
`,
    );
    const r = await cli(['test', tests, '--config', CRM]);
    expect(r.code).toBe(1);
    expect(lines(r.stdout)).toEqual(['ok   sales reads accounts (expected allow; got allow by sales; reasons: sales:rule-matched)', '1 passed, 3 failed']);
    expect(lines(r.stderr)).toEqual([
      'FAIL sales is wrongly expected to be refused (expected deny; got allow by sales; reasons: sales:rule-matched)',
      'FAIL refused, but not for the reason given (expected deny with source-ip-unauthorized; got deny; reasons: admins-with-mfa:mfa-required)',
      'FAIL a route that does not exist (expected allow; got error: no route named "nope")',
    ]);
  });

  it('counts a report-only would_deny as deny (the policy said no)', async () => {
    const config = file(
      'report-only.yaml',
      `listen: { address: 127.0.0.1:0, plaintext: true }
identity_providers:
  corp: { type: jwt, issuer: https://idp.example.com, audiences: [gw], algorithms: [HS256], secret: "0123456789abcdef0123456789abcdef" }
routes:
  - name: legacy
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [corp]
    mode: report-only
    authorize:
      allow: [{ name: admins, groups: admins }]
`,
    );
    const tests = file(
      'report-only.test.yaml',
      `tests:
  - name: not an admin
    route: legacy
    identity: { subject: alice }
    expect: deny
    reason: groups-unauthorized
`,
    );
    const r = await run(['test', tests, '--config', config]);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([
      'ok   not an admin (expected deny with groups-unauthorized; got would_deny; reasons: admins:groups-unauthorized)',
      '1 passed, 0 failed',
    ]);
  });

  it.each([
    ['a missing expect', 'tests:\n  - { name: x, route: crm }\n', /\.test\.yaml: tests\.0\.expect: /],
    ['an unknown key', 'tests:\n  - { name: x, route: crm, expect: allow, identiy: {} }\n', /\.test\.yaml: tests\.0: /],
    ['a reason outside the vocabulary', 'tests:\n  - { name: x, route: crm, expect: deny, reason: time-unauthorised }\n', /\.test\.yaml: tests\.0\.reason: /],
    ['no tests', 'tests: []\n', /\.test\.yaml: tests: /],
  ])('exits 2 for a test file with %s', async (_name, content, message) => {
    const r = await run(['test', file(`bad-${_name.replaceAll(' ', '-')}.test.yaml`, content), '--config', CRM]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
  });

  it('exits 2 (not 1) when the config cannot be loaded, naming the problem with line and column', async () => {
    const config = file('broken.yaml', 'listen: { address: 127.0.0.1:0, plaintext: true }\nroutes:\n  - name: a\n    upstream: { url: http://127.0.0.1:9 }\n    public: true\n    authorize:\n      allow: [{ groupz: x }]\n');
    const r = await cli(['test', CRM_TESTS, '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('routes[0].authorize.allow[0].groupz: unknown key at line 7:17');
  });

  it('exits 2 for usage errors', async () => {
    expect((await run(['test', CRM_TESTS])).code).toBe(2);
    expect((await run(['test', '--config', CRM])).code).toBe(2);
  });
});

describe.concurrent('zt-gateway explain', () => {
  const base = ['explain', '--config', CRM];

  it('prints an allow with its rule and reason, exit 0', async () => {
    const alice = identity('alice', { subject: 'alice', email: 'alice@example.com', email_verified: true, groups: ['sales'], method: 'jwt' });
    const r = await cli([...base, '--route', 'crm', '--identity', alice, '--method', 'get', '--path', '/accounts']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['route:    crm', 'decision: allow (sales)', 'result:   forwarded to the upstream', 'reason:   sales: rule-matched']);
  });

  it('prints a default deny with the reason of every failed allow rule, exit 1', async () => {
    const erin = identity('erin', { subject: 'erin', email: 'erin@example.com', email_verified: true, groups: ['eng'] });
    const r = await cli([...base, '--route', 'crm', '--identity', erin, '--path', '/accounts', '--time', '2026-11-22T10:00:00+01:00']);
    expect(r.code).toBe(1);
    expect(lines(r.stdout)).toEqual([
      'route:    crm',
      'decision: deny',
      'result:   answered 403',
      'reason:   sales: groups-unauthorized',
      'reason:   office-hours: time-unauthorized',
      'reason:   reporting-key: subject-unauthorized',
      'reason:   reporting-key: method-unauthorized',
      'reason:   reporting-key: path-unauthorized',
    ]);
  });

  it('honours --time in the rule time zone (Monday 10:00 Berlin is office hours)', async () => {
    const erin = identity('erin2', { subject: 'erin', email: 'erin@example.com', email_verified: true, groups: ['eng'] });
    const r = await run([...base, '--route', 'crm', '--identity', erin, '--path', '/accounts', '--time', '2026-11-23T09:00:00Z']);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)[1]).toBe('decision: allow (office-hours)');
  });

  it('names the deny rule that matched', async () => {
    const carl = identity('carl', { subject: 'carl', groups: ['sales', 'contractors'] });
    const r = await run([...base, '--route', 'crm', '--identity', carl, '--method', 'POST', '--path', '/accounts']);
    expect(r.code).toBe(1);
    expect(lines(r.stdout)).toEqual([
      'route:    crm',
      'decision: deny (contractors-never-write)',
      'result:   answered 403',
      'reason:   contractors-never-write: deny-rule-matched',
    ]);
  });

  it('honours --ip for source_ip rules', async () => {
    const root = identity('root', { subject: 'root', groups: ['admins'], amr: ['pwd', 'otp'] });
    const args = [...base, '--route', 'crm-admin', '--identity', root, '--path', '/admin/users'];
    const inside = await run([...args, '--ip', '10.1.2.3']);
    expect(inside.code).toBe(0);
    expect(lines(inside.stdout)[1]).toBe('decision: allow (admins-with-mfa)');
    const outside = await run([...args, '--ip', '203.0.113.9']);
    expect(outside.code).toBe(1);
    expect(lines(outside.stdout).at(-1)).toBe('reason:   admins-with-mfa: source-ip-unauthorized');
    const mapped = await run([...args, '--ip', '::ffff:10.1.2.3']);
    expect(mapped.code).toBe(0);
  });

  it('--json output parses, for allow and for deny', async () => {
    const alice = identity('alice-json', { subject: 'alice', groups: ['sales'] });
    const allow = await cli([...base, '--route', 'crm', '--identity', alice, '--path', '/accounts', '--json']);
    expect(allow.code).toBe(0);
    expect(JSON.parse(allow.stdout)).toEqual({
      route: 'crm',
      warnings: [],
      decision: 'allow',
      status: 'forward',
      rule: 'sales',
      reasons: [{ rule: 'sales', reason: 'rule-matched' }],
    });
    const bob = identity('bob-json', { subject: 'bob', groups: ['admins'], amr: ['pwd'] });
    const deny = await cli([...base, '--route', 'crm-admin', '--identity', bob, '--path', '/admin', '--ip', '10.0.0.1', '--json']);
    expect(deny.code).toBe(1);
    expect(JSON.parse(deny.stdout)).toEqual({
      route: 'crm-admin',
      warnings: [],
      decision: 'deny',
      status: 403,
      reasons: [{ rule: 'admins-with-mfa', reason: 'mfa-required' }],
    });
  });

  it('without an identity: unauthenticated, answered 401, exit 1', async () => {
    const r = await run([...base, '--route', 'crm', '--path', '/accounts', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ route: 'crm', warnings: [], decision: 'unauthenticated', status: 401, reasons: [{ rule: '-', reason: 'unauthenticated' }] });
  });

  it('warns when the path is not under the route', async () => {
    const alice = identity('alice-warn', { subject: 'alice', groups: ['admins'], amr: ['otp'] });
    const r = await run([...base, '--route', 'crm-admin', '--identity', alice, '--path', '/administrator', '--ip', '10.0.0.1']);
    expect(r.stderr).toBe('warning: path /administrator is not under route crm-admin (/admin): the router would not send it there\n');
  });

  // Argument builders: identity files are written once the temp dir exists.
  it.each<[string, () => string[], string | RegExp]>([
    ['an unknown route', () => ['--route', 'nope', '--path', '/'], 'explain: no route named "nope"\n'],
    ['an invalid --ip', () => ['--route', 'crm', '--ip', '10.0.0.300'], 'explain: invalid --ip "10.0.0.300"\n'],
    ['a CIDR as --ip', () => ['--route', 'crm', '--ip', '10.0.0.0/8'], 'explain: invalid --ip "10.0.0.0/8"\n'],
    ['an invalid --time', () => ['--route', 'crm', '--time', 'monday'], /^explain: invalid time "monday"/],
    ['a missing identity file', () => ['--route', 'crm', '--identity', '/nonexistent/id.json'], /^explain: ENOENT/],
    ['an identity without subject', () => ['--route', 'crm', '--identity', identity('nosubject', { groups: ['sales'] })], 'explain: identity needs a "subject" string\n'],
  ])('exits 2 for %s', async (_name, args, message) => {
    const r = await run([...base, ...args()]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    if (typeof message === 'string') expect(r.stderr).toBe(message);
    else expect(r.stderr).toMatch(message);
  });

  it('exits 2 for an unknown route (spawned)', async () => {
    const r = await cli([...base, '--route', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('explain: no route named "nope"\n');
  });

  it('exits 2 (not 1, which means deny) when the config cannot be loaded', async () => {
    const config = file('bad-cidr.yaml', 'listen: { address: 127.0.0.1:0, plaintext: true }\nroutes:\n  - name: a\n    upstream: { url: http://127.0.0.1:9 }\n    public: true\n    authorize:\n      allow: [{ source_ip: 10.0.0.0/33 }]\n');
    const r = await cli(['explain', '--config', config, '--route', 'a']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/routes\[0\]\.authorize\.allow\[0\]\.source_ip: invalid prefix length in "10\.0\.0\.0\/33" at line 7:\d+/);
  });

  it('exits 2 with usage when --route is missing', async () => {
    const r = await run(['explain', '--config', CRM]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage:');
  });
});
