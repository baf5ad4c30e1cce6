// Several upstream endpoints, continued: the signed assertion's audience is one value for every endpoint
// (upstream.audience, else the first endpoint's origin); WebSocket upgrades are balanced like requests and
// skip an ejected endpoint; an endpoint that comes back passes its health check again; a reload keeps the
// health state of an unchanged upstream and stops the checks of one it dropped; shutdown stops them all.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { request } from 'undici';
import { apiKeyFixture } from '../helpers/api-keys.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { closeAllLive, openLive, startEchoUpstream, type EchoUpstream } from '../helpers/live.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const keys = apiKeyFixture('endpoints');
const up: Record<string, Upstream> = {};
let ws1: EchoUpstream;
let ws2: EchoUpstream;
let gw: TestGateway;
let flakyHealthy = true;
let flakyChecks = 0;
let droppedChecks = 0;

const checksOf = (u: Upstream) => u.received.filter((r) => r.url === '/healthz').length;

function config(withDropped: boolean): string {
  const u = (n: string) => (up[n] as Upstream).url;
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: api-keys.yaml, header: X-Api-Key }
routes:
  - name: aud-default
    match: { path: /aud-default }
    upstream: { endpoints: [${u('a1')}, ${u('a2')}] }
    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
  - name: aud-set
    match: { path: /aud-set }
    upstream: { endpoints: [${u('a1')}, ${u('a2')}], audience: https://app.internal }
    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
  - name: ws
    match: { path: /ws }
    upstream: { endpoints: [${ws1.url}, ${ws2.url}], outlier: { consecutive_errors: 1, ejection: 30s } }
    public: true
  - name: flaky
    match: { path: /flaky }
    upstream:
      endpoints: [${u('f1')}, ${u('f2')}]
      health: { path: /healthz, interval: 100ms, timeout: 80ms, healthy_after: 2, unhealthy_after: 2 }
    public: true
${
  withDropped
    ? `  - name: dropped
    match: { path: /dropped }
    upstream:
      endpoints: [${u('d1')}]
      health: { path: /healthz, interval: 100ms, timeout: 80ms }
    public: true
`
    : ''
}`;
}

beforeAll(async () => {
  for (const n of ['a1', 'a2', 'f2', 'd1']) {
    up[n] = await startUpstream((req, res) => {
      if (req.url === '/healthz' && n === 'd1') droppedChecks++;
      res.writeHead(200, { 'x-upstream': n });
      res.end(n);
      return true;
    });
  }
  up.f1 = await startUpstream((req, res) => {
    if (req.url === '/healthz') flakyChecks++;
    res.writeHead(req.url === '/healthz' && !flakyHealthy ? 503 : 200, { 'x-upstream': 'f1' });
    res.end('f1');
    return true;
  });
  ws1 = await startEchoUpstream();
  ws2 = await startEchoUpstream();
  gw = await startGateway(config(true), { files: { 'api-keys.yaml': keys.yaml } });
});

afterAll(async () => {
  closeAllLive();
  await gw?.close();
  for (const u of Object.values(up)) await u.close().catch(() => undefined);
  await ws1?.close();
  await ws2?.close();
});

async function jwks() {
  const res = await request(`${gw.url}/.well-known/zt-gateway/jwks.json`);
  return createLocalJWKSet((await res.body.json()) as JSONWebKeySet);
}

describe('the signed assertion across endpoints', () => {
  it('has one audience for every endpoint: the first endpoint\'s origin by default, upstream.audience when set', async () => {
    const keySet = await jwks();
    const a1 = up.a1 as Upstream;
    const a2 = up.a2 as Upstream;
    for (const [path, audience] of [['/aud-default/x', a1.url], ['/aud-set/x', 'https://app.internal']] as const) {
      const seen = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const res = await request(`${gw.url}${path}`, { headers: { 'x-api-key': keys.ops } });
        expect(res.statusCode).toBe(200);
        seen.add(res.headers['x-upstream'] as string);
        await res.body.text();
      }
      expect([...seen].sort()).toEqual(['a1', 'a2']);
      const last = [a1.received.at(-1), a2.received.at(-1)];
      for (const rec of last) {
        const { payload } = await jwtVerify(rec?.headers['x-zt-assertion'] as string, keySet, { issuer: 'zt-gateway', audience });
        expect(payload.aud).toBe(audience);
        expect(payload.sub).toBe('svc-ops');
      }
    }
  });
});

describe('WebSocket upgrades', () => {
  it('are balanced round robin over the endpoints, and skip an ejected one', async () => {
    const wsUrl = gw.url.replace('http:', 'ws:');
    const clients = [];
    for (let i = 0; i < 4; i++) {
      const c = await openLive(`${wsUrl}/ws/${i}`);
      await c.roundTrip(`m${i}`);
      clients.push(c);
    }
    expect(ws1.connections.map((c) => c.url)).toEqual(['/ws/0', '/ws/2']);
    expect(ws2.connections.map((c) => c.url)).toEqual(['/ws/1', '/ws/3']);
    for (const c of clients) c.ws.close();
    // ws2 goes away: one failed handshake ejects it (consecutive_errors: 1); the next upgrades go to ws1.
    await ws2.close();
    const results: string[] = [];
    for (let i = 0; i < 4; i++) {
      try {
        const c = await openLive(`${wsUrl}/ws/after${i}`);
        await c.roundTrip('x');
        results.push('open');
        c.ws.close();
      } catch (err) {
        results.push((err as Error).message);
      }
    }
    expect(results.filter((r) => r !== 'open')).toEqual(['handshake answered 502']);
    expect(ws1.connections.filter((c) => c.url.startsWith('/ws/after'))).toHaveLength(3);
  });
});

describe('health checks over time', () => {
  it('an endpoint failing its checks is taken out, and put back after healthy_after good ones', async () => {
    const f2 = up.f2 as Upstream;
    flakyHealthy = false;
    await waitFor(async () => {
      const served = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const r = await request(`${gw.url}/flaky/x`);
        served.add(r.headers['x-upstream'] as string);
        await r.body.text();
      }
      return served.size === 1 && served.has('f2');
    }, { timeoutMs: 3000, what: 'f1 to be marked unhealthy' });
    const before = f2.received.filter((r) => r.url === '/flaky/x').length;
    for (let i = 0; i < 6; i++) expect((await request(`${gw.url}/flaky/x`)).headers['x-upstream']).toBe('f2');
    expect(f2.received.filter((r) => r.url === '/flaky/x').length - before).toBe(6);
    flakyHealthy = true;
    await waitFor(async () => {
      const r = await request(`${gw.url}/flaky/x`);
      await r.body.text();
      return r.headers['x-upstream'] === 'f1';
    }, { timeoutMs: 3000, what: 'f1 to be healthy again' });
  });

  it('a reload keeps an unchanged upstream\'s health state and stops the checks of a dropped route', async () => {
    flakyHealthy = false;
    await waitFor(async () => {
      const r = await request(`${gw.url}/flaky/x`);
      await r.body.text();
      const r2 = await request(`${gw.url}/flaky/x`);
      await r2.body.text();
      return r.headers['x-upstream'] === 'f2' && r2.headers['x-upstream'] === 'f2';
    }, { timeoutMs: 3000, what: 'f1 to be marked unhealthy' });
    expect(droppedChecks).toBeGreaterThan(0);
    writeFileSync(gw.configFile, config(false));
    expect(await gw.gateway.reload()).toBe(true);
    // Right after the reload f1 is still out (its state was kept, not reset to healthy).
    for (let i = 0; i < 4; i++) {
      const r = await request(`${gw.url}/flaky/x`);
      await r.body.text();
      expect(r.headers['x-upstream']).toBe('f2');
    }
    const dropped = droppedChecks;
    await sleep(350);
    expect(droppedChecks).toBe(dropped);
    expect(checksOf(up.d1 as Upstream)).toBe(dropped);
    flakyHealthy = true;
  });

  it('shutdown stops every health check', async () => {
    await gw.close();
    const checks = flakyChecks;
    await sleep(350);
    expect(flakyChecks).toBe(checks);
  });
});
