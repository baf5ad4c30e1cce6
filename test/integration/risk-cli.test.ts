// `zt-gateway explain --risk <score> | --signals <names>` and `risk:` in policy test files: the score, its
// signals and the decision (deny by risk_above, step-up, allow) as an operator sees them; bad values exit 2.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { tempDir } from '../helpers/gateway.ts';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
async function run(args: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (l) => (stdout += `${l}\n`), err: (l) => (stderr += `${l}\n`) });
  return { code, stdout, stderr };
}

let dir: string;
let config: string;
let id: string;
beforeAll(() => {
  dir = tempDir('ztgw-risk-cli-');
  config = join(dir, 'gateway.yaml');
  writeFileSync(
    config,
    `listen: { address: 127.0.0.1:0, plaintext: true }
identity_headers: { assertion: false }
risk:
  weights: { new_ip: 0.11, impossible_travel: 0.5 }
identity_providers:
  ci: { type: jwt, issuer: https://ci.example.com, audiences: [gw], algorithms: [HS256], secret: "${'s'.repeat(40)}" }
routes:
  - name: deny
    match: { path: /deny }
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [ci]
    authorize:
      allow: [{ authenticated: true }]
      deny: [{ name: risky, risk_above: 0.8 }]
  - name: stepup
    match: { path: /stepup }
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [ci]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { when: { risk_above: 0.5 }, acr: mfa }
  - name: plain
    match: { path: /plain }
    upstream: { url: http://127.0.0.1:9 }
    authenticate: [ci]
    authorize: { allow: [{ authenticated: true }] }
`,
  );
  id = join(dir, 'id.json');
  writeFileSync(id, JSON.stringify({ subject: 'eve', method: 'jwt' }));
});

const explain = (route: string, ...extra: string[]) => run(['explain', '--config', config, '--route', route, '--identity', id, '--path', `/${route}`, ...extra]);

describe('explain with risk', () => {
  it('--risk 0.9 on a risk_above 0.8 deny rule: deny (exit 1) with risk-too-high and the score', async () => {
    const r = await explain('deny', '--risk', '0.9');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')).toEqual([
      'route:    deny',
      'decision: deny (risky)',
      'result:   answered 403',
      'reason:   risky: deny-rule-matched',
      'reason:   risky: risk-too-high',
      'risk:     0.9',
      '',
    ]);
  });

  it('--risk 0.8 is not above 0.8: allowed (exit 0)', async () => {
    const r = await explain('deny', '--risk', '0.8');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('decision: allow');
  });

  it('--signals: scored with the config weights; above step_up.when → step_up (401)', async () => {
    const r = await explain('stepup', '--signals', 'new_ip,impossible_travel', '--json');
    expect(r.code).toBe(1);
    const e = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(e).toMatchObject({
      route: 'stepup',
      decision: 'step_up',
      status: 401,
      risk: { score: 0.61, signals: [{ name: 'new_ip', weight: 0.11 }, { name: 'impossible_travel', weight: 0.5 }] },
      step_up: { acr: 'mfa', risk_above: 0.5 },
    });
    const low = await explain('stepup', '--signals', 'new_ip,new_country'); // default weight 0.3 for new_country
    expect(low.code).toBe(0);
    expect(low.stdout).toContain('risk:     0.41 new_ip(+0.11) new_country(+0.3)');
  });

  it('a route that scores no risk: the given score changes nothing and a warning says so', async () => {
    const r = await explain('plain', '--risk', '1');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('warning: route plain does not score risk (no risk_above, step_up.when or risk.all_routes)\n');
  });

  it.each([
    [['--risk', '1.5'], 'explain: invalid --risk "1.5" (0 to 1)\n'],
    [['--risk', 'high'], 'explain: invalid --risk "high" (0 to 1)\n'],
    [['--risk', ''], 'explain: invalid --risk "" (0 to 1)\n'],
    [['--signals', 'new_ip,teleport'], /^explain: unknown signal "teleport"/],
    [['--risk', '0.5', '--signals', 'new_ip'], 'explain: give --risk or --signals, not both\n'],
  ])('%j: exit 2', async (args, message) => {
    const r = await explain('deny', ...args);
    expect(r.code).toBe(2);
    if (typeof message === 'string') expect(r.stderr).toBe(message);
    else expect(r.stderr).toMatch(message);
  });

  it('policy test files take request.risk', async () => {
    const tests = join(dir, 'risk.test.yaml');
    writeFileSync(
      tests,
      `tests:
  - { name: risky, route: deny, identity: { subject: eve }, request: { path: /deny, risk: 0.95 }, expect: deny, reason: risk-too-high }
  - { name: calm, route: deny, identity: { subject: eve }, request: { path: /deny, risk: 0.2 }, expect: allow }
  - { name: challenged, route: stepup, identity: { subject: eve }, request: { path: /stepup, risk: 0.7 }, expect: deny }
`,
    );
    const r = await run(['test', tests, '--config', config]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('3 passed, 0 failed');
  });
});
