// Risk scoring through the real gateway: JWT callers behind a trusted proxy (127.0.0.1/32) whose
// X-Forwarded-For picks the client address, the real GeoLite2 database, a real upstream that records what it
// received. Each signal raises the score by its configured weight (audit record), risk_above denies, a risk
// step-up answers 401 { challenge: "mfa" } to API callers, and hostile or broken input never crashes nor opens.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { signHs256 } from '../helpers/idp.ts';
import { GEOIP_V4, GEOIP_V6, IP_DE, IP_GB, IP_IE, IP_JP, IP_UNKNOWN } from '../helpers/geoip.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type Rec = Record<string, unknown>;
const JWT_SECRET = `risk-secret-${randomBytes(16).toString('hex')}`;
const ISSUER = 'https://idp.risk.test';
const W = { new_ip: 0.11, new_country: 0.12, impossible_travel: 0.5, unknown_device: 0.13, auth_failures: 0.14 };

const config = (up: string, extra = '') => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
trusted_proxies: [127.0.0.1/32]
identity_headers: { assertion: false }
log: { access: false }
risk:
  geoip_db: ["${GEOIP_V4}", "${GEOIP_V6}"]
  weights: { new_ip: ${W.new_ip}, new_country: ${W.new_country}, impossible_travel: ${W.impossible_travel}, unknown_device: ${W.unknown_device}, auth_failures: ${W.auth_failures}, unusual_hours: 0, high_volume: 0 }
  learning: { requests: 2, period: 0s }
  auth_failures: { count: 3, window: 10m }
${extra}
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
  - name: plain
    match: { path: /plain }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;

const token = (sub: string, claims: Record<string, unknown> = {}, key = JWT_SECRET) => signHs256(key, ISSUER, sub, claims);

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(config(upstream.url), { env: { JWT_SECRET } });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

interface Result {
  status: number;
  body: Rec;
  headers: Record<string, string | string[] | undefined>;
  record: Rec;
  forwarded: boolean;
}

async function call(path: string, o: { sub?: string; bearer?: string; xff?: string; ua?: string; on?: TestGateway } = {}): Promise<Result> {
  const target = o.on ?? gw;
  const before = upstream.received.length;
  const headers: Record<string, string> = { 'user-agent': o.ua ?? 'Firefox/140', accept: 'application/json' };
  headers.authorization = `Bearer ${o.bearer ?? (await token(o.sub ?? 'nobody'))}`;
  if (o.xff !== undefined) headers['x-forwarded-for'] = o.xff;
  const res = await request(`${target.url}${path}`, { headers });
  const text = await res.body.text();
  const id = res.headers['x-request-id'] as string;
  await waitFor(() => target.logs.some((l) => l.audit === true && l.request_id === id));
  const record = target.logs.find((l) => l.audit === true && l.request_id === id) as Rec;
  return {
    status: res.statusCode,
    body: text.startsWith('{') ? (JSON.parse(text) as Rec) : {},
    headers: res.headers,
    record,
    forwarded: upstream.received.length > before,
  };
}

const signalNames = (r: Result) => ((r.record.risk as { signals: Array<{ name: string }> } | undefined)?.signals ?? []).map((s) => s.name).sort();
const score = (r: Result) => (r.record.risk as { score: number } | undefined)?.score;

/** Two admitted requests: the learning period (2) is over and the subject's usual place is `ip`. */
async function learn(sub: string, ip: string, path = '/deny'): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const r = await call(path, { sub, xff: ip });
    expect(r.status).toBe(200);
  }
}

describe('each signal raises the score by its configured weight (audit record)', () => {
  it('usual address and browser: score 0, the record says so', async () => {
    await learn('s-usual', IP_GB);
    const r = await call('/deny', { sub: 's-usual', xff: IP_GB });
    expect(r.status).toBe(200);
    expect(r.record.risk).toEqual({ score: 0, signals: [] });
  });

  it('new IP (same LAN, no location)', async () => {
    await learn('s-ip', '10.0.0.1');
    const r = await call('/deny', { sub: 's-ip', xff: '10.0.0.2' });
    expect(r.status).toBe(200);
    expect(r.record.risk).toEqual({ score: W.new_ip, signals: [{ name: 'new_ip', weight: W.new_ip }] });
  });

  it('new country (first located request after LAN ones: no travel)', async () => {
    await learn('s-country', '10.0.0.1');
    const r = await call('/deny', { sub: 's-country', xff: IP_DE });
    expect(signalNames(r)).toEqual(['new_country', 'new_ip']);
    expect(score(r)).toBe(0.23);
  });

  it('impossible travel with two public addresses from the shipped database (GB → JP → GB within seconds)', async () => {
    const first = await call('/deny', { sub: 's-travel', xff: IP_GB });
    expect(first.record.risk).toEqual({ score: 0, signals: [] });
    // Still learning (1 of 2): novelty is off, travel is not.
    const tokyo = await call('/deny', { sub: 's-travel', xff: IP_JP });
    expect(tokyo.status).toBe(200);
    expect(signalNames(tokyo)).toEqual(['impossible_travel']);
    const back = await call('/deny', { sub: 's-travel', xff: IP_GB });
    expect(back.status).toBe(200);
    expect(signalNames(back)).toEqual(['impossible_travel']);
    expect(score(back)).toBe(W.impossible_travel);
    const detail = (back.record.risk as { signals: Array<{ detail: { km: number } }> }).signals[0]?.detail;
    expect(detail?.km).toBeGreaterThan(9000);
    // The record's client address is the one X-Forwarded-For named through the trusted proxy.
    expect(back.record.client_ip).toBe(IP_GB);
  });

  it('unknown device (another User-Agent)', async () => {
    await learn('s-device', IP_GB);
    const r = await call('/deny', { sub: 's-device', xff: IP_GB, ua: 'curl/8.11' });
    expect(r.record.risk).toEqual({ score: W.unknown_device, signals: [{ name: 'unknown_device', weight: W.unknown_device }] });
  });

  it('recent authentication failures from the client address (3 forged tokens)', async () => {
    const ip = '10.7.7.7';
    await learn('s-fail', ip);
    const forged = await token('s-fail', {}, `wrong-${JWT_SECRET}`);
    for (let i = 0; i < 3; i++) {
      const bad = await call('/deny', { bearer: forged, xff: ip });
      expect(bad.status).toBe(401);
      expect(bad.forwarded).toBe(false);
    }
    const r = await call('/deny', { sub: 's-fail', xff: ip });
    expect(r.status).toBe(200);
    expect(signalNames(r)).toEqual(['auth_failures']);
    expect(score(r)).toBe(W.auth_failures);
    // Another address of the same subject is not affected by those failures.
    expect(signalNames(await call('/deny', { sub: 's-fail', xff: '10.7.7.8' }))).toEqual(['new_ip']);
  });

  it('a route that does not use risk is not scored (no risk in its record)', async () => {
    const r = await call('/plain', { sub: 's-plain', xff: IP_JP });
    expect(r.status).toBe(200);
    expect(r.record.route).toBe('plain');
    expect('risk' in r.record).toBe(false);
  });

  it('risk.all_routes: true scores (and learns on) every authenticated route, audit only where nothing uses it', async () => {
    const g = await startGateway(config(upstream.url).replace('risk:\n', 'risk:\n  all_routes: true\n'), { env: { JWT_SECRET } });
    try {
      await call('/plain', { sub: 's-all', xff: IP_GB, on: g });
      const r = await call('/plain', { sub: 's-all', xff: IP_JP, on: g });
      expect(r.status).toBe(200);
      expect(r.record.route).toBe('plain');
      expect(signalNames(r)).toEqual(['impossible_travel']);
    } finally {
      await g.close();
    }
  });
});

describe('risk in policy', () => {
  it('deny rule risk_above 0.8: 403 with risk-too-high, nothing forwarded; below it the same caller passes', async () => {
    await learn('s-deny', IP_GB);
    const r = await call('/deny', { sub: 's-deny', xff: IP_JP, ua: 'curl/8' });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('GW_ERR_FORBIDDEN');
    expect(r.forwarded).toBe(false);
    expect(r.record.decision).toBe('deny');
    expect(r.record.rule).toBe('too-risky');
    expect(r.record.reasons).toEqual([
      { rule: 'too-risky', reason: 'deny-rule-matched' },
      { rule: 'too-risky', reason: 'risk-too-high' },
    ]);
    expect(score(r)).toBe(0.86);
    expect(signalNames(r)).toEqual(['impossible_travel', 'new_country', 'new_ip', 'unknown_device']);
    // The denied request taught the profile nothing: retrying from Tokyo is still denied.
    expect((await call('/deny', { sub: 's-deny', xff: IP_JP, ua: 'curl/8' })).status).toBe(403);
    expect((await call('/deny', { sub: 's-deny', xff: IP_GB })).status).toBe(200);
  });

  it('API step-up above 0.5: 401 { challenge: "mfa" } problem JSON; a fresh MFA token passes', async () => {
    await learn('s-step', IP_GB, '/stepup');
    const r = await call('/stepup', { sub: 's-step', xff: IP_JP });
    expect(r.status).toBe(401);
    expect(r.forwarded).toBe(false);
    expect(r.body).toMatchObject({ challenge: 'mfa', code: 'GW_ERR_UNAUTHENTICATED', status: 401, type: 'urn:zt-gateway:error:GW_ERR_UNAUTHENTICATED' });
    expect(typeof r.body.request_id).toBe('string');
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.headers['www-authenticate']).toBe('Bearer realm="zt-gateway", error="insufficient_user_authentication", acr_values="mfa", max_age=300');
    expect(r.record.decision).toBe('step_up');
    expect(score(r)).toBeGreaterThan(0.5);
    // A token that says MFA but whose login is an hour old is not a fresh step-up.
    const old = Math.floor(Date.now() / 1000) - 3600;
    const stale = await call('/stepup', { bearer: await token('s-step', { amr: ['mfa'], auth_time: old }), xff: IP_JP });
    expect(stale.status).toBe(401);
    expect(stale.body.challenge).toBe('mfa');
    const fresh = await call('/stepup', { bearer: await token('s-step', { amr: ['mfa'] }), xff: IP_JP });
    expect(fresh.status).toBe(200);
    expect(fresh.forwarded).toBe(true);
    expect(score(fresh)).toBeGreaterThan(0.5);
    // Below the threshold no challenge at all, MFA or not.
    expect((await call('/stepup', { sub: 's-step', xff: IP_JP })).status).toBe(200);
  });
});

describe('hostile and broken input: the signal is absent, never a crash, never open', () => {
  it('a malformed X-Forwarded-For: the client is the proxy itself (no location, no travel)', async () => {
    await learn('s-xff', IP_JP);
    const seen: string[][] = [];
    for (const xff of ['not-an-ip', '999.1.1.1', `${IP_GB}, garbage`, ' , ,', '\u00e9', '1.2.3.4:80', `${'9'.repeat(300)}`]) {
      const r = await call('/deny', { sub: 's-xff', xff });
      expect(r.status, xff).toBe(200);
      expect(r.forwarded, xff).toBe(true);
      expect(r.record.client_ip, xff).toBe('127.0.0.1');
      seen.push(signalNames(r));
    }
    // The proxy's own address is new once (then learned); never a country, never travel from Tokyo.
    expect(seen).toEqual([['new_ip'], [], [], [], [], [], []]);
  });

  it('an address missing from the database: no country, no travel', async () => {
    await learn('s-unknown', IP_JP);
    const r = await call('/deny', { sub: 's-unknown', xff: IP_UNKNOWN });
    expect(r.status).toBe(200);
    expect(signalNames(r)).toEqual(['new_ip']);
  });

  it('X-Forwarded-For from a peer that is not a trusted proxy is not believed', async () => {
    const g = await startGateway(config(upstream.url).replace('trusted_proxies: [127.0.0.1/32]', 'trusted_proxies: [10.0.0.0/8]'), { env: { JWT_SECRET } });
    try {
      await call('/deny', { sub: 's-spoof', xff: IP_GB, on: g });
      const r = await call('/deny', { sub: 's-spoof', xff: IP_JP, on: g });
      expect(r.record.client_ip).toBe('127.0.0.1');
      expect(signalNames(r)).toEqual([]);
    } finally {
      await g.close();
    }
  });

  it('a corrupt database file is a config error at load that names risk.geoip_db', async () => {
    const dir = tempDir('ztgw-risk-');
    writeFileSync(join(dir, 'bad.mmdb'), randomBytes(4096));
    const yaml = config(upstream.url).replace(`geoip_db: ["${GEOIP_V4}", "${GEOIP_V6}"]`, 'geoip_db: bad.mmdb');
    const err = await startGateway(yaml, { dir, env: { JWT_SECRET } }).then(
      (g) => g.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.path)).toEqual(['risk.geoip_db']);
  });

  it('risk config errors: risk_above in an allow rule, on a public route, out of range', async () => {
    const base = config(upstream.url);
    const bad = {
      allow: base.replace('allow: [{ authenticated: true }]\n      deny:', 'allow: [{ authenticated: true, risk_above: 0.5 }]\n      deny:'),
      public: base.replace('  - name: plain\n    match: { path: /plain }\n    upstream: { url: ' + upstream.url + ' }\n    authenticate: [corp]\n    authorize: { allow: [{ authenticated: true }] }', `  - name: plain\n    match: { path: /plain }\n    upstream: { url: ${upstream.url} }\n    public: true\n    step_up: { when: { risk_above: 0.5 } }`),
      range: base.replace('risk_above: 0.8', 'risk_above: 1.5'),
    };
    const paths: Record<string, string[]> = {};
    for (const [name, yaml] of Object.entries(bad)) {
      const err = await startGateway(yaml, { env: { JWT_SECRET } }).then((g) => g.close().then(() => undefined), (e: unknown) => e);
      expect(err, name).toBeInstanceOf(ConfigError);
      paths[name] = (err as ConfigError).problems.map((p) => p.path);
    }
    expect(paths.allow).toEqual(['routes[0].authorize.allow[0].risk_above']);
    expect(paths.public).toContain('routes[2].public');
    expect(paths.range).toEqual(['routes[0].authorize.deny[0].risk_above']);
  });
});
