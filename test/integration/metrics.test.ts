// /metrics on the admin listener after real traffic: exact counter values for a known sequence of requests
// (routes, statuses, decisions and reasons, MFA share, service calls and their denials, rate limits of each
// kind, JWKS fetches, reloads, grants), and bounded labels (no path or subject ever becomes a label).
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { hashKey } from '../../src/authn/api-key.ts';
import { setActiveGrantsSource } from '../../src/metrics/index.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { closedPort, startIdp, type TestIdp } from '../helpers/idp.ts';
import { scrape } from '../helpers/metrics.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const OPS_KEY = 'ztk_metrics_ops_0123456789abcdefghij';
const DEV_KEY = 'ztk_metrics_dev_0123456789abcdefghij';
const KEYS = `keys:
  - { id: ops, hash: ${hashKey(OPS_KEY)}, subject: svc-ops, groups: [ops] }
  - { id: dev, hash: ${hashKey(DEV_KEY)}, subject: svc-dev, groups: [dev] }
`;

let upstream: Upstream;
let idp: TestIdp;
let deadIssuer: string;
let gw: TestGateway;
let admin: string;

function config(extra = ''): string {
  return `listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0 }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: api-keys.yaml }
  corp: { type: jwt, issuer: "${idp.issuer}", audiences: [gw], algorithms: [ES256], jwks_uri: "${idp.jwksUri}" }
  dead: { type: jwt, issuer: "${deadIssuer}", audiences: [gw], algorithms: [ES256], jwks_uri: "${deadIssuer}/jwks.json", jwks: { timeout: 500ms } }
rate_limits:
  auth_failures: { limit: 2, window: 1m, block: 1m }
routes:
  - name: pub
    match: { path: /pub }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: svc
    match: { path: /svc }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [keys]
    authorize: { allow: [{ groups: ops }] }
  - name: users
    match: { path: /users }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
  - name: dead
    match: { path: /dead }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [dead]
    authorize: { allow: [{ authenticated: true }] }
  - name: limited
    match: { path: /limited }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
    rate_limit: { per: route, limit: 1, window: 1m }
  - name: report
    match: { path: /report }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [keys]
    authorize: { allow: [{ groups: nobody }] }
    mode: report-only
${extra}`;
}

async function status(path: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(`${gw.url}${path}`, { headers });
  await res.body.dump();
  return res.statusCode;
}

beforeAll(async () => {
  upstream = await startUpstream();
  idp = await startIdp();
  deadIssuer = `http://127.0.0.1:${await closedPort()}`;
  gw = await startGateway(config(), { files: { 'api-keys.yaml': KEYS } });
  admin = gw.gateway.adminUrl as string;
});

afterAll(async () => {
  setActiveGrantsSource(null);
  await gw?.close();
  await idp?.close();
  await upstream?.close();
});

describe('/metrics', () => {
  it('starts with declared metrics and no samples for traffic that has not happened', async () => {
    const m = await scrape(admin);
    expect(m.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const name of [
      'zt_requests_total', 'zt_decisions_total', 'zt_upstream_duration_seconds', 'zt_ratelimit_rejections_total',
      'zt_jwks_fetches_total', 'zt_config_reloads_total', 'zt_websockets_active', 'zt_authenticated_requests_total',
      'zt_service_requests_total', 'zt_service_denied_total', 'zt_grants_active',
    ]) {
      expect(m.text).toContain(`# TYPE ${name} `);
    }
    expect(m.samples('zt_requests_total')).toEqual([]);
    expect(m.value('zt_websockets_active')).toBe(0);
    expect(m.value('zt_grants_active')).toBe(0);
    // No state.redis: no Redis gauge at all (a 0 would page someone for a Redis that does not exist).
    expect(m.text).not.toContain('zt_redis_up');
  });

  it('counts a known sequence of requests exactly', async () => {
    for (const p of ['/pub/a', '/pub/b', '/pub/c?q=1']) expect(await status(p)).toBe(200);
    expect(await status('/nowhere/alice')).toBe(404);
    expect(await status('/svc/x', { authorization: `ApiKey ${OPS_KEY}` })).toBe(200);
    expect(await status('/svc/x', { authorization: `ApiKey ${DEV_KEY}` })).toBe(403);
    expect(await status('/svc/x')).toBe(401);
    expect(await status('/users/1', { authorization: `Bearer ${await idp.sign({ amr: ['pwd', 'otp'] })}` })).toBe(200);
    expect(await status('/users/2', { authorization: `Bearer ${await idp.sign({ amr: ['pwd'] })}` })).toBe(200);
    expect(await status('/dead/1', { authorization: `Bearer ${await idp.sign({}, { iss: deadIssuer })}` })).toBe(503);
    expect(await status('/limited/1')).toBe(200);
    expect(await status('/limited/2')).toBe(429);
    expect(await status('/report/1', { authorization: `ApiKey ${DEV_KEY}` })).toBe(200);

    const m = await scrape(admin);
    const req = (route: string, s: string) => m.value('zt_requests_total', { route, status: s });
    expect(req('pub', '200')).toBe(3);
    expect(req('none', '404')).toBe(1);
    expect(req('svc', '200')).toBe(1);
    expect(req('svc', '403')).toBe(1);
    expect(req('svc', '401')).toBe(1);
    expect(req('users', '200')).toBe(2);
    expect(req('dead', '503')).toBe(1);
    expect(req('limited', '200')).toBe(1);
    expect(req('limited', '429')).toBe(1);
    expect(req('report', '200')).toBe(1);
    expect(m.sum('zt_requests_total')).toBe(13);
    expect(m.sum('zt_requests_total', { route: 'svc' })).toBe(3);

    const dec = (route: string, decision: string, reason: string) => m.value('zt_decisions_total', { route, decision, reason });
    expect(dec('pub', 'public', 'public-route')).toBe(3);
    expect(dec('svc', 'allow', 'rule-matched')).toBe(1);
    expect(dec('svc', 'deny', 'groups-unauthorized')).toBe(1);
    expect(dec('svc', 'unauthenticated', 'unauthenticated')).toBe(1);
    expect(dec('users', 'allow', 'rule-matched')).toBe(2);
    expect(dec('limited', 'public', 'public-route')).toBe(1);
    expect(dec('limited', 'rate_limited', 'rate-limited')).toBe(1);
    expect(dec('report', 'would_deny', 'groups-unauthorized')).toBe(1);
    // A 404 and a failed dependency are not access decisions.
    expect(m.samples('zt_decisions_total')).toHaveLength(8);

    expect(m.value('zt_upstream_duration_seconds_count', { route: 'pub' })).toBe(3);
    expect(m.value('zt_upstream_duration_seconds_bucket', { route: 'pub', le: '+Inf' })).toBe(3);
    expect(m.value('zt_upstream_duration_seconds_count', { route: 'svc' })).toBe(1);
    expect(m.value('zt_upstream_duration_seconds_count', { route: 'dead' })).toBe(0); // never forwarded
    expect(m.value('zt_upstream_duration_seconds_sum', { route: 'pub' })).toBeGreaterThan(0);

    expect(m.value('zt_authenticated_requests_total', { method: 'jwt', mfa: 'true' })).toBe(1);
    expect(m.value('zt_authenticated_requests_total', { method: 'jwt', mfa: 'false' })).toBe(1);
    expect(m.value('zt_authenticated_requests_total', { method: 'api_key', mfa: 'false' })).toBe(3);
    expect(m.value('zt_service_requests_total', { mtls: 'false' })).toBe(3);
    expect(m.value('zt_service_requests_total', { mtls: 'true' })).toBe(0);
    expect(m.value('zt_service_denied_total', { route: 'svc' })).toBe(1);
    expect(m.value('zt_service_denied_total', { route: 'report' })).toBe(0); // report-only forwarded it

    expect(m.value('zt_ratelimit_rejections_total', { limit: 'route' })).toBe(1);
    expect(m.value('zt_ratelimit_rejections_total', { limit: 'pre_auth' })).toBe(0);
    expect(m.value('zt_jwks_fetches_total', { provider: 'corp', result: 'ok' })).toBe(1);
    expect(m.value('zt_jwks_fetches_total', { provider: 'dead', result: 'error' })).toBe(1);

    // Bounded labels: no path, query or subject ever appears.
    for (const leak of ['/pub', 'nowhere', 'alice', 'svc-ops', 'q=1']) expect(m.text).not.toContain(leak);
  });

  it('counts reloads by result and keeps counting across a reload', async () => {
    expect(await gw.gateway.reload()).toBe(true);
    writeFileSync(gw.configFile, 'listen: [not, valid]\n');
    expect(await gw.gateway.reload()).toBe(false);
    writeFileSync(gw.configFile, config());
    expect(await status('/pub/after-reload')).toBe(200);
    const m = await scrape(admin);
    expect(m.value('zt_config_reloads_total', { result: 'ok' })).toBe(1);
    expect(m.value('zt_config_reloads_total', { result: 'error' })).toBe(1);
    expect(m.value('zt_requests_total', { route: 'pub', status: '200' })).toBe(4);
  });

  it('exports the active grants hook', async () => {
    setActiveGrantsSource(() => 7);
    expect((await scrape(admin)).value('zt_grants_active')).toBe(7);
    setActiveGrantsSource(null);
    expect((await scrape(admin)).value('zt_grants_active')).toBe(0);
  });

  it('counts a brute-force lockout as a lockout rejection', async () => {
    expect(await status('/svc/x', { authorization: 'ApiKey ztk_wrong_1' })).toBe(401);
    expect(await status('/svc/x', { authorization: 'ApiKey ztk_wrong_2' })).toBe(401);
    expect(await status('/svc/x', { authorization: `ApiKey ${OPS_KEY}` })).toBe(429);
    const m = await scrape(admin);
    expect(m.value('zt_ratelimit_rejections_total', { limit: 'lockout' })).toBe(1);
    expect(m.value('zt_decisions_total', { route: 'svc', decision: 'rate_limited', reason: 'rate-limited' })).toBe(1);
    expect(m.value('zt_decisions_total', { route: 'svc', decision: 'unauthenticated', reason: 'unauthenticated' })).toBe(3);
  });
});

describe('/metrics: pre-auth limit', () => {
  it('counts pre_auth rejections', async () => {
    const up = await startUpstream();
    const g = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0 }
shutdown: { drain_timeout: 1s }
rate_limits: { pre_auth: { per: ip, limit: 1, window: 1m } }
routes:
  - name: app
    match: { path: / }
    upstream: { url: ${up.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`);
    try {
      const codes = [];
      for (let i = 0; i < 3; i++) {
        const res = await request(`${g.url}/x`);
        await res.body.dump();
        codes.push(res.statusCode);
      }
      expect(codes).toEqual([200, 429, 429]);
      const m = await scrape(g.gateway.adminUrl as string);
      expect(m.value('zt_ratelimit_rejections_total', { limit: 'pre_auth' })).toBe(2);
      expect(m.value('zt_decisions_total', { route: 'app', decision: 'rate_limited', reason: 'rate-limited' })).toBe(2);
      expect(m.value('zt_requests_total', { route: 'app', status: '429' })).toBe(2);
      expect(up.received).toHaveLength(1);
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('/metrics: request validation', () => {
  it('counts refused bodies as rejected and report-only ones as would_reject (reason validation-failed)', async () => {
    const up = await startUpstream();
    const schema = '{ type: object, required: [name], properties: { name: { type: string } } }';
    const g = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0 }
shutdown: { drain_timeout: 1s }
routes:
  - { name: strict, match: { path: /strict }, upstream: { url: "${up.url}" }, public: true, validate: { body: ${schema} } }
  - { name: watch, match: { path: /watch }, upstream: { url: "${up.url}" }, public: true, mode: report-only, validate: { body: ${schema} } }
`);
    try {
      const post = async (path: string, body: string) => {
        const res = await request(`${g.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.body.dump();
        return res.statusCode;
      };
      expect(await post('/strict', '{"other":1}')).toBe(400);
      expect(await post('/strict', '{"name":"ok"}')).toBe(200);
      expect(await post('/watch', '{"other":1}')).toBe(200);
      const m = await scrape(g.gateway.adminUrl as string);
      expect(m.value('zt_decisions_total', { route: 'strict', decision: 'rejected', reason: 'validation-failed' })).toBe(1);
      expect(m.value('zt_decisions_total', { route: 'watch', decision: 'would_reject', reason: 'validation-failed' })).toBe(1);
      expect(m.value('zt_decisions_total', { route: 'strict', decision: 'public', reason: 'public-route' })).toBe(1);
      expect(up.received).toHaveLength(2);
    } finally {
      await g.close();
      await up.close();
    }
  });
});
