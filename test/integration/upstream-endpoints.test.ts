// Several upstream endpoints (issue 20): exact round-robin distribution over three real servers, Host per
// endpoint, least_request, retries on idempotent requests only (within the budget) when one endpoint is killed
// mid-run, outlier ejection, a hung endpoint ejected by the active health check, every endpoint down → 503
// GW_ERR_NO_HEALTHY_UPSTREAM at once with Retry-After, and the per-endpoint metrics.
import net, { type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { freePort, waitFor } from '../helpers/wait.ts';

/** A real upstream that names itself in `x-upstream` (and answers /healthz). */
async function named(name: string, status = 200): Promise<Upstream> {
  return await startUpstream((req, res, rec) => {
    if (rec.url.includes('/slow')) {
      setTimeout(() => {
        res.writeHead(200, { 'x-upstream': name });
        res.end('slow');
      }, 400);
      return true;
    }
    res.writeHead(req.url === '/healthz' ? 200 : status, { 'content-type': 'application/json', 'x-upstream': name });
    res.end(JSON.stringify({ name, url: rec.url, host: req.headers.host, bodyBytes: rec.bodyBytes }));
    return true;
  });
}

/** Kills a server as a crash would: no new connections, open ones destroyed. */
function kill(u: Upstream): Promise<void> {
  return new Promise((r) => {
    u.server.close(() => r());
    u.server.closeAllConnections();
  });
}

const up: Record<string, Upstream> = {};
let hung: net.Server;
let hungPort: number;
const hungSockets = new Set<Socket>();
let closedA: number;
let closedB: number;
let gw: TestGateway;

async function get(path: string, init: Parameters<typeof request>[1] = {}) {
  const res = await request(`${gw.url}${path}`, init);
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

async function metrics(): Promise<string> {
  return (await gw.gateway.runtime.metrics.scrape()).body;
}

function metric(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

beforeAll(async () => {
  for (const n of ['a', 'b', 'c', 'l1', 'l2', 'r1', 'r2', 'm1', 'm2', 'v1', 'v2', 'p1', 'p2', 'n1', 'n2', 'h1', 's1']) up[n] = await named(n);
  up.s503 = await named('s503', 503);
  closedA = await freePort();
  closedB = await freePort();
  hung = net.createServer((socket) => {
    hungSockets.add(socket);
    socket.on('close', () => hungSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.resume(); // reads, never answers
  });
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  hungPort = (hung.address() as AddressInfo).port;
  const u = (n: string) => (up[n] as Upstream).url;
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
routes:
  - name: rr
    match: { path: /rr }
    upstream: { endpoints: [${u('a')}, ${u('b')}, ${u('c')}], timeout: 2s, connect_timeout: 1s }
    public: true
  - name: least
    match: { path: /least }
    upstream: { endpoints: [${u('l1')}, ${u('l2')}], balance: least_request, timeout: 5s }
    public: true
  - name: retry
    match: { path: /retry }
    upstream:
      endpoints: [${u('r1')}, ${u('r2')}]
      timeout: 2s
      connect_timeout: 1s
      retries: { attempts: 2, on: [connect_failure, reset, 503] }
    public: true
  - name: midflight
    match: { path: /midflight }
    upstream:
      endpoints: [${u('m1')}, ${u('m2')}]
      timeout: 3s
      retries: { attempts: 1, on: [reset] }
    public: true
  - name: validated
    match: { path: /validated }
    upstream:
      endpoints: [${u('v1')}, ${u('v2')}]
      retries: { attempts: 1, on: [connect_failure, reset] }
    public: true
    validate: { body: { type: object, required: [n], properties: { n: { type: integer } }, additionalProperties: false }, max_body: 16kb }
  - name: nobudget
    match: { path: /nobudget }
    upstream:
      endpoints: [http://127.0.0.1:${closedA}, ${u('n1')}]
      retries: { attempts: 2, on: [connect_failure], budget: { percent: 0, min_concurrency: 0 } }
    public: true
  - name: status
    match: { path: /status }
    upstream:
      endpoints: [${u('s503')}, ${u('s1')}]
      retries: { attempts: 1, on: [503] }
    public: true
  - name: status-relayed
    match: { path: /relayed }
    upstream: { endpoints: [${u('s503')}, ${u('p1')}] }
    public: true
  - name: down
    match: { path: /down }
    upstream:
      endpoints: [http://127.0.0.1:${closedA}, http://127.0.0.1:${closedB}]
      connect_timeout: 1s
      outlier: { consecutive_errors: 1, ejection: 30s }
    public: true
  - name: health
    match: { path: /health }
    upstream:
      endpoints: [http://127.0.0.1:${hungPort}, ${u('h1')}]
      timeout: 5s
      health: { path: /healthz, interval: 300ms, timeout: 150ms, healthy_after: 1, unhealthy_after: 1 }
    public: true
  - name: allhung
    match: { path: /allhung }
    upstream:
      url: http://127.0.0.1:${hungPort}
      timeout: 5s
      health: { path: /healthz, interval: 300ms, timeout: 150ms, healthy_after: 2, unhealthy_after: 1 }
    public: true
  - name: single
    match: { path: /single }
    upstream: { url: ${u('p2')} }
    public: true
`);
});

afterAll(async () => {
  await gw?.close();
  for (const u of Object.values(up)) await u.close().catch(() => undefined);
  for (const s of hungSockets) s.destroy();
  await new Promise<void>((r) => hung.close(() => r()));
});

describe('several upstream endpoints', () => {
  it('round robin over three real upstreams: exact distribution and order, Host per endpoint', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 9; i++) {
      const r = await get(`/rr/x${i}`);
      expect(r.status).toBe(200);
      seen.push(r.headers['x-upstream'] as string);
    }
    expect(seen).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
    for (const n of ['a', 'b', 'c']) {
      const u = up[n] as Upstream;
      expect(u.received).toHaveLength(3);
      // Each endpoint is sent its own Host, never another endpoint's.
      expect(u.received.map((r) => r.headers.host)).toEqual([`127.0.0.1:${u.port}`, `127.0.0.1:${u.port}`, `127.0.0.1:${u.port}`]);
    }
    expect((up.a as Upstream).received.map((r) => r.url)).toEqual(['/rr/x0', '/rr/x3', '/rr/x6']);
  });

  it('least_request sends to the endpoint with fewer requests in flight', async () => {
    const l1 = up.l1 as Upstream;
    const l2 = up.l2 as Upstream;
    // Sequential requests with nothing in flight rotate (ties broken round robin).
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push((await get('/least/t')).headers['x-upstream'] as string);
    expect(order).toEqual(['l1', 'l2', 'l1', 'l2']);
    // One slow request held on l1: the next ones all go to l2 while it is in flight.
    const slow = get('/least/slow');
    await waitFor(() => l1.received.some((r) => r.url === '/least/slow') || undefined);
    const during: string[] = [];
    for (let i = 0; i < 3; i++) during.push((await get('/least/t')).headers['x-upstream'] as string);
    expect(during).toEqual(['l2', 'l2', 'l2']);
    expect((await slow).headers['x-upstream']).toBe('l1');
    expect(metric(await metrics(), 'zt_upstream_endpoint_inflight', 'route="least",endpoint="0"')).toBe(0);
    expect(l1.received).toHaveLength(3);
    expect(l2.received).toHaveLength(5);
  });

  it('one endpoint killed mid-run: idempotent GETs never fail (retried on the other), POST with a body is not retried (502)', async () => {
    const r1 = up.r1 as Upstream;
    const r2 = up.r2 as Upstream;
    for (let i = 0; i < 4; i++) expect((await get(`/retry/before${i}`)).status).toBe(200);
    expect(r1.received).toHaveLength(2);
    expect(r2.received).toHaveLength(2);
    await kill(r2);
    const statuses: number[] = [];
    const served: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await get(`/retry/after${i}`);
      statuses.push(r.status);
      served.push(r.headers['x-upstream'] as string);
    }
    expect(statuses).toEqual(Array(10).fill(200));
    expect(served).toEqual(Array(10).fill('r1'));
    expect(r1.received.filter((r) => r.url.startsWith('/retry/after'))).toHaveLength(10);
    // PUT and DELETE are idempotent too (a body held in memory? no: PUT with no body).
    expect((await get('/retry/put', { method: 'PUT' })).status).toBe(200);
    expect((await get('/retry/del', { method: 'DELETE' })).status).toBe(200);
    // Two POSTs with a body: round robin sends one to the dead endpoint, which is not retried.
    const posts = [];
    for (let i = 0; i < 2; i++) posts.push(await get(`/retry/post${i}`, { method: 'POST', body: 'x'.repeat(100), headers: { 'content-type': 'text/plain' } }));
    expect(posts.map((p) => p.status).sort()).toEqual([200, 502]);
    const failed = posts.find((p) => p.status === 502);
    expect(failed?.json().code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    expect(r1.received.filter((r) => r.url.startsWith('/retry/post'))).toHaveLength(1);
    const m = await metrics();
    expect(metric(m, 'zt_upstream_retries_total', 'route="retry"')).toBeGreaterThanOrEqual(5);
  });

  it('an endpoint killed while a GET is in flight there: the GET is sent again to the other endpoint (no client error)', async () => {
    const m1 = up.m1 as Upstream;
    const m2 = up.m2 as Upstream;
    // Round robin: the first slow GET is held by m1, the second by m2.
    const first = get('/midflight/slow/1');
    const second = get('/midflight/slow/2');
    await waitFor(() => m2.received.some((r) => r.url === '/midflight/slow/2') || undefined, { what: 'm2 to hold a request' });
    await kill(m2);
    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect([a.headers['x-upstream'], b.headers['x-upstream']]).toEqual(['m1', 'm1']);
    expect(m1.received.map((r) => r.url).sort()).toEqual(['/midflight/slow/1', '/midflight/slow/2']);
    expect(metric(await metrics(), 'zt_upstream_retries_total', 'route="midflight"')).toBe(1);
  });

  it('a PUT whose body the gateway held for validation is retried with the same bytes; an unvalidated POST is not', async () => {
    const v1 = up.v1 as Upstream;
    const v2 = up.v2 as Upstream;
    await kill(v2);
    const body = JSON.stringify({ n: 42 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await get(`/validated/${i}`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } });
      statuses.push(r.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200]);
    const got = v1.received.filter((r) => r.url.startsWith('/validated/'));
    expect(got).toHaveLength(4);
    for (const r of got) {
      expect(r.bodyBytes).toBe(Buffer.byteLength(body));
      expect(r.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    }
    // POST is not idempotent: held or not, a failure on the dead endpoint is answered, never retried.
    const posts: number[] = [];
    for (let i = 0; i < 2; i++) posts.push((await get(`/validated/p${i}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).status);
    expect(posts.sort()).toEqual([200, 502]);
  });

  it('no retry outside the budget (percent 0, min_concurrency 0): the dead endpoint answers 502', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(`/nobudget/${i}`)).status);
    expect(statuses.sort()).toEqual([200, 200, 502, 502]);
    expect(metric(await metrics(), 'zt_upstream_retries_total', 'route="nobudget"')).toBe(0);
  });

  it('a 503 answer is retried on the other endpoint when `on` names it, relayed as is otherwise', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await get(`/status/${i}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-upstream']).toBe('s1');
    }
    const relayed: number[] = [];
    for (let i = 0; i < 2; i++) relayed.push((await get(`/relayed/${i}`)).status);
    expect(relayed.sort()).toEqual([200, 503]);
  });

  it('every endpoint ejected: 503 GW_ERR_NO_HEALTHY_UPSTREAM with Retry-After, at once, no connect attempt', async () => {
    // consecutive_errors: 1 → each failed connect ejects its endpoint for 30s.
    expect((await get('/down/1')).status).toBe(502);
    expect((await get('/down/2')).status).toBe(502);
    const t0 = performance.now();
    const r = await get('/down/3');
    const ms = performance.now() - t0;
    expect(r.status).toBe(503);
    expect(r.json().code).toBe('GW_ERR_NO_HEALTHY_UPSTREAM');
    const retryAfter = Number(r.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(25);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(ms).toBeLessThan(200);
    const m = await metrics();
    expect(metric(m, 'zt_upstream_endpoint_ejections_total', 'route="down",endpoint="0"')).toBe(1);
    expect(metric(m, 'zt_upstream_endpoint_ejections_total', 'route="down",endpoint="1"')).toBe(1);
    expect(metric(m, 'zt_upstream_endpoint_healthy', 'route="down",endpoint="0"')).toBe(0);
    expect(metric(m, 'zt_upstream_endpoint_healthy', 'route="down",endpoint="1"')).toBe(0);
    expect(metric(m, 'zt_upstream_endpoint_healthy', 'route="rr",endpoint="2"')).toBe(1);
    expect(metric(m, 'zt_upstream_endpoint_inflight', 'route="rr",endpoint="0"')).toBe(0);
  });

  it('a hung endpoint (accepts, never answers) is marked unhealthy by the health check; requests go to the other at once', async () => {
    await waitFor(async () => metric(await metrics(), 'zt_upstream_endpoint_healthy', 'route="health",endpoint="0"') === 0 || undefined, { timeoutMs: 5000, what: 'the hung endpoint to fail its health check' });
    const h1 = up.h1 as Upstream;
    const before = h1.received.filter((r) => r.url !== '/healthz').length;
    const t0 = performance.now();
    for (let i = 0; i < 6; i++) {
      const r = await get(`/health/${i}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-upstream']).toBe('h1');
    }
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(h1.received.filter((r) => r.url !== '/healthz').length - before).toBe(6);
    expect(metric(await metrics(), 'zt_upstream_endpoint_healthy', 'route="health",endpoint="1"')).toBe(1);
  });

  it('its only endpoint hung and unhealthy: 503 GW_ERR_NO_HEALTHY_UPSTREAM at once (not after the 5s timeout), Retry-After', async () => {
    await waitFor(async () => metric(await metrics(), 'zt_upstream_endpoint_healthy', 'route="allhung",endpoint="0"') === 0 || undefined, { timeoutMs: 5000, what: 'the hung endpoint to fail its health check' });
    const accepted = hungSockets.size;
    const t0 = performance.now();
    const r = await get('/allhung/x');
    expect(performance.now() - t0).toBeLessThan(200);
    expect(r.status).toBe(503);
    expect(r.json().code).toBe('GW_ERR_NO_HEALTHY_UPSTREAM');
    expect(r.headers['retry-after']).toBe('1'); // two passing checks 300ms apart
    expect(hungSockets.size).toBeLessThanOrEqual(accepted + 1); // at most a health check's connection, no request
  });

  it('the one-endpoint url: form still works, endpoint label 0', async () => {
    const r = await get('/single/x');
    expect(r.status).toBe(200);
    expect(r.headers['x-upstream']).toBe('p2');
    expect(metric(await metrics(), 'zt_upstream_endpoint_healthy', 'route="single",endpoint="0"')).toBe(1);
  });
});
