// `zt-gateway explain` must decide exactly as the running gateway does. A table of identities (no MFA, fresh
// MFA, MFA from an hour ago), routes (risk deny rule, risk step-up, both) and risk levels (the real signals
// of a real gateway: known place, Tokyo, Tokyo with a new browser) goes through both: same decision, same
// reasons, same status.
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFromJson } from '../../src/core/index.ts';
import { explain } from '../../src/cli/explain.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { signHs256 } from '../helpers/idp.ts';
import { GEOIP_V4, GEOIP_V6, IP_GB, IP_JP } from '../helpers/geoip.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type Rec = Record<string, unknown>;
const JWT_SECRET = `parity-secret-${randomBytes(16).toString('hex')}`;
const ISSUER = 'https://idp.parity.test';

const config = (up: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
trusted_proxies: [127.0.0.1/32]
identity_headers: { assertion: false }
log: { access: false }
risk:
  geoip_db: ["${GEOIP_V4}", "${GEOIP_V6}"]
  weights: { new_ip: 0.11, new_country: 0.12, impossible_travel: 0.5, unknown_device: 0.13, auth_failures: 0, unusual_hours: 0, high_volume: 0 }
  learning: { requests: 2, period: 0s }
identity_providers:
  corp: { type: jwt, issuer: ${ISSUER}, audiences: [gw], algorithms: [HS256], secret: "\${env:JWT_SECRET}" }
routes:
  - name: deny
    match: { path: /deny }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize:
      allow: [{ authenticated: true }]
      deny: [{ name: too-risky, risk_above: 0.8 }]
  - name: stepup
    match: { path: /stepup }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { when: { risk_above: 0.5 }, acr: mfa }
  - name: both
    match: { path: /both }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize:
      allow: [{ authenticated: true }]
      deny: [{ name: too-risky, risk_above: 0.8 }]
    step_up: { when: { risk_above: 0.5 }, acr: mfa }
  - name: mfa
    match: { path: /mfa }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { acr: mfa, max_age: 10m }
`;

let upstream: Upstream;
let gw: TestGateway;
let n = 0;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(config(upstream.url), { env: { JWT_SECRET } });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

type Who = 'plain' | 'fresh-mfa' | 'stale-mfa';
type Level = 'low' | 'mid' | 'high';

function claimsOf(who: Who): Rec {
  const now = Math.floor(Date.now() / 1000);
  if (who === 'fresh-mfa') return { amr: ['mfa'], auth_time: now };
  if (who === 'stale-mfa') return { amr: ['mfa'], auth_time: now - 3600 };
  return {};
}

async function call(path: string, sub: string, claims: Rec, xff: string, ua: string): Promise<{ status: number; record: Rec }> {
  const res = await request(`${gw.url}${path}`, {
    headers: { authorization: `Bearer ${await signHs256(JWT_SECRET, ISSUER, sub, claims)}`, 'x-forwarded-for': xff, 'user-agent': ua, accept: 'application/json' },
  });
  await res.body.dump();
  const id = res.headers['x-request-id'] as string;
  const record = await waitFor(() => gw.logs.find((l) => l.audit === true && l.request_id === id));
  return { status: res.statusCode, record };
}

const routes = ['deny', 'stepup', 'both', 'mfa'] as const;
const whos: Who[] = ['plain', 'fresh-mfa', 'stale-mfa'];
const levels: Level[] = ['low', 'mid', 'high'];
const cases = routes.flatMap((route) => whos.flatMap((who) => levels.map((level) => ({ route, who, level }))));

describe('explain decides as the running gateway', () => {
  it.each(cases)('$route, $who, $level risk', async ({ route, who, level }) => {
    const sub = `parity-${++n}`;
    const claims = claimsOf(who);
    // A profile learned in Bracknell with one browser (two admitted requests on a scoring route: /deny
    // admits everyone at score 0 and every route shares the profile).
    for (let i = 0; i < 2; i++) expect((await call('/deny', sub, claims, IP_GB, 'Firefox/140')).status).toBe(200);
    const [ip, ua] = level === 'low' ? [IP_GB, 'Firefox/140'] : level === 'mid' ? [IP_JP, 'Firefox/140'] : [IP_JP, 'curl/8'];
    const live = await call(`/${route}`, sub, claims, ip, ua);
    const risk = live.record.risk as { score: number } | undefined;
    if (route !== 'mfa') expect(risk?.score).toBe(level === 'low' ? 0 : level === 'mid' ? 0.73 : 0.86);

    const identity = identityFromJson({ subject: sub, method: 'jwt', ...claims });
    const compiled = gw.gateway.runtime.current.compiled;
    const e = explain(compiled, route, identity, {
      method: 'GET',
      path: `/${route}`,
      ip,
      nowMs: Date.now(),
      deviceId: undefined,
      risk: risk === undefined ? undefined : { score: risk.score, signals: [] },
    });
    expect({ decision: e.decision, status: e.status === 'forward' ? 200 : e.status }).toEqual({ decision: live.record.decision, status: live.status });
    expect(e.reasons).toEqual(live.record.reasons ?? []);
    expect(e.rule).toBe(live.record.rule);
  });
});
