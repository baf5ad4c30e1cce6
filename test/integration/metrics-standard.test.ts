// The standard metrics an operator's dashboards already expect (issue 21): the OpenTelemetry semantic-convention
// request histogram http_server_request_duration_seconds after real requests (a 200, a slow 200, a 403, a 404,
// a 400 refused before routing, a method outside the standard set, a WebSocket upgrade), prom-client's Node
// runtime metrics and zt_build_info, on a /metrics that needs the admin token.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { hashKey } from '../../src/authn/api-key.ts';
import { readBuildInfo } from '../../src/metrics/index.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { scrape, type Scrape } from '../helpers/metrics.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const TOKEN = 'standard-metrics-admin-token-0123456789';
const TOKEN_HASH = createHash('sha256').update(TOKEN).digest('hex');
const DEV_KEY = 'ztk_standard_dev_0123456789abcdefghij';
const OTEL_BUCKETS = ['0.005', '0.01', '0.025', '0.05', '0.075', '0.1', '0.25', '0.5', '0.75', '1', '2.5', '5', '7.5', '10', '+Inf'];
const HIST = 'http_server_request_duration_seconds';
const SLOW_MS = 600;

let upstream: Upstream;
let wss: WebSocketServer;
let gw: TestGateway;
let admin: string;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url !== '/pub/slow') return false;
    setTimeout(() => res.end('slow'), SLOW_MS);
    return true;
  });
  wss = new WebSocketServer({ noServer: true });
  upstream.server.on('upgrade', (req: IncomingMessage, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(d))));
  gw = await startGateway(
    `listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0, token_hash: "${TOKEN_HASH}" }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: api-keys.yaml }
routes:
  - { name: pub, match: { path: /pub }, upstream: { url: "${upstream.url}", timeout: 5s }, public: true }
  - { name: ws, match: { path: /ws }, upstream: { url: "${upstream.url}" }, public: true }
  - name: svc
    match: { path: /svc }
    upstream: { url: "${upstream.url}" }
    authenticate: [keys]
    authorize: { allow: [{ groups: ops }] }
`,
    { files: { 'api-keys.yaml': `keys:\n  - { id: dev, hash: ${hashKey(DEV_KEY)}, subject: svc-dev, groups: [dev] }\n` } },
  );
  admin = gw.gateway.adminUrl as string;
});

afterAll(async () => {
  await gw?.close();
  for (const c of wss?.clients ?? []) c.terminate();
  wss?.close();
  await upstream?.close();
});

async function status(path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<number> {
  const res = await request(`${gw.url}${path}`, { method: opts.method ?? 'GET', headers: opts.headers ?? {} });
  await res.body.dump();
  return res.statusCode;
}

async function upgrade(): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws/chat`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const echoed = new Promise((r) => ws.once('message', r));
  ws.send('ping');
  await echoed;
  ws.close();
}

const series = (route: string, method: string, code: string) => ({ http_route: route, http_request_method: method, http_response_status_code: code });

/** The `le` bounds of one label set, in exposition order, and their cumulative counts. */
function buckets(m: Scrape, labels: Record<string, string>): Array<[string, number]> {
  return m
    .samples(`${HIST}_bucket`)
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map((s) => [s.labels.le as string, s.value]);
}

describe('http_server_request_duration_seconds', () => {
  it('is declared before any traffic, with no samples', async () => {
    const m = await scrape(admin, TOKEN);
    expect(m.text).toContain(`# TYPE ${HIST} histogram`);
    expect(m.samples(`${HIST}_count`)).toEqual([]);
  });

  it('records every request under its route, semconv method and status, in the OpenTelemetry buckets', async () => {
    expect(await status('/pub/fast')).toBe(200);
    expect(await status('/pub/slow')).toBe(200);
    expect(await status('/svc/x', { headers: { authorization: `ApiKey ${DEV_KEY}` } })).toBe(403);
    expect(await status('/nowhere')).toBe(404);
    expect(await status('/pub/PROPFIND', { method: 'PROPFIND' })).toBe(200);
    // Refused by normalize (no context, no route): the raw request's method.
    const bad = await rawRequest(gw.port, 'GET /pub/a%2Fb HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(bad.status).toBe(400);
    await upgrade();

    const m = await scrape(admin, TOKEN);
    const count = (route: string, method: string, code: string) => m.value(`${HIST}_count`, series(route, method, code));
    expect(count('pub', 'GET', '200')).toBe(2);
    expect(count('svc', 'GET', '403')).toBe(1);
    expect(count('none', 'GET', '404')).toBe(1);
    expect(count('none', 'GET', '400')).toBe(1);
    expect(count('pub', '_OTHER', '200')).toBe(1); // PROPFIND is not a semconv method: no label value a client can mint
    expect(count('ws', 'GET', '101')).toBe(1); // the upgrade: to the upstream's 101
    expect(m.sum(`${HIST}_count`)).toBe(7);
    expect(m.samples(`${HIST}_count`)).toHaveLength(6);

    // Exactly OpenTelemetry's recommended buckets, cumulative; the slow request is above 0.5 s.
    const pub = buckets(m, series('pub', 'GET', '200'));
    expect(pub.map(([le]) => le)).toEqual(OTEL_BUCKETS);
    expect(pub.map(([, n]) => n)).toEqual([...pub.map(([, n]) => n)].sort((a, b) => a - b));
    expect(m.value(`${HIST}_bucket`, { ...series('pub', 'GET', '200'), le: '0.5' })).toBe(1);
    expect(m.value(`${HIST}_bucket`, { ...series('pub', 'GET', '200'), le: '+Inf' })).toBe(2);
    expect(m.value(`${HIST}_sum`, series('pub', 'GET', '200'))).toBeGreaterThanOrEqual(SLOW_MS / 1000);
    for (const s of m.samples(`${HIST}_bucket`)) expect(Object.keys(s.labels).sort()).toEqual(['http_request_method', 'http_response_status_code', 'http_route', 'le']);
    // Bounded labels: no path, raw method or subject.
    for (const leak of ['PROPFIND', '/pub', 'nowhere', 'svc-dev', 'chat']) expect(m.text).not.toContain(leak);
  });

  it('counts the same requests as zt_requests_total', async () => {
    const m = await scrape(admin, TOKEN);
    expect(m.sum(`${HIST}_count`)).toBe(m.sum('zt_requests_total'));
  });
});

describe('runtime metrics and build info', () => {
  it("exports prom-client's default Node runtime metrics: event-loop lag, heap, GC, CPU, memory", async () => {
    const m = await scrape(admin, TOKEN);
    for (const [name, type] of [
      ['nodejs_eventloop_lag_seconds', 'gauge'], ['nodejs_eventloop_lag_p99_seconds', 'gauge'], ['nodejs_heap_size_used_bytes', 'gauge'],
      ['nodejs_heap_space_size_used_bytes', 'gauge'], ['nodejs_gc_duration_seconds', 'histogram'], ['process_cpu_seconds_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'], ['nodejs_active_handles_total', 'gauge'], ['nodejs_version_info', 'gauge'],
    ] as const) {
      expect(m.text).toContain(`# TYPE ${name} ${type}`);
    }
    expect(m.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(m.value('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('exports zt_build_info = 1 with the version, the commit of the build-info file and the Node version', async () => {
    const m = await scrape(admin, TOKEN);
    const build = readBuildInfo();
    expect(build.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(m.samples('zt_build_info')).toEqual([{ labels: { version: build.version, commit: build.commit, node: process.version }, value: 1 }]);
  });

  it('refuses /metrics without the admin token', async () => {
    const res = await request(`${admin}/metrics`);
    expect(res.statusCode).toBe(401);
    expect(await res.body.text()).not.toContain(HIST);
  });
});
