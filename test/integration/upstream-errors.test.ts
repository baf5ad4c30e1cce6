// Upstream failures: down → 502, silent → 504, reset mid-response → truncated answer. The problem body
// never names the upstream, never carries a stack, and the gateway keeps serving after each.
import net, { type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { freePort, waitFor } from '../helpers/wait.ts';

let healthy: Upstream;
let silent: net.Server;
let silentPort: number;
const silentSockets = new Set<Socket>();
let silentAccepted = 0;
let closedPort: number;
let resetting: Upstream;
let gw: TestGateway;

beforeEach(() => {
  silentAccepted = 0; // per test: connections the silent upstream accepted during this test
});

beforeAll(async () => {
  healthy = await startUpstream();
  closedPort = await freePort();
  // Accepts, reads, never answers.
  silent = net.createServer((socket) => {
    silentAccepted++;
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.resume();
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as AddressInfo).port;
  resetting = await startUpstream((req, res) => {
    const chunked = req.url === '/reset-chunked';
    res.writeHead(200, chunked ? { 'content-type': 'text/plain' } : { 'content-type': 'text/plain', 'content-length': '1000000' });
    res.write(Buffer.alloc(64 * 1024, 'a'));
    setTimeout(() => (req.socket as Socket).resetAndDestroy(), 50);
    return true;
  });
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
routes:
  - name: down
    match: { path: /down }
    upstream: { url: http://127.0.0.1:${closedPort}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: silent
    match: { path: /silent }
    upstream: { url: http://127.0.0.1:${silentPort}, timeout: 300ms, connect_timeout: 1s }
    public: true
  - name: hang
    match: { path: /hang }
    upstream: { url: http://127.0.0.1:${silentPort}, timeout: 10s, connect_timeout: 1s }
    public: true
  - name: reset
    match: { path: /reset }
    upstream: { url: ${resetting.url}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: reset-chunked
    match: { path: /reset-chunked }
    upstream: { url: ${resetting.url}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: ok
    match: { path: / }
    upstream: { url: ${healthy.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`);
});

afterAll(async () => {
  await gw?.close();
  for (const s of silentSockets) s.destroy();
  await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()));
  await resetting?.close();
  await healthy?.close();
});

interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  request_id: string;
}

/** Asserts a problem body leaks nothing about the upstream or the gateway's internals. */
function expectOpaque(text: string, problem: Problem, upstreamPort: number): void {
  const withoutId = text.replace(problem.request_id, '');
  expect(withoutId).not.toContain('127.0.0.1');
  expect(withoutId).not.toContain(String(upstreamPort));
  expect(withoutId).not.toMatch(/localhost|ECONN|UND_ERR|Error:|\n\s+at |node:|\.ts:|\.js:/);
  expect(Object.keys(problem).sort()).toEqual(['code', 'detail', 'request_id', 'status', 'title', 'type']);
}

async function expectStillServing(): Promise<void> {
  const before = healthy.received.length;
  const res = await request(`${gw.url}/ok?after=1`);
  expect(res.statusCode).toBe(200);
  await res.body.text();
  expect(healthy.received.length).toBe(before + 1);
  expect(healthy.received.at(-1)!.url).toBe('/ok?after=1');
}

describe('upstream failures', () => {
  it('answers 502 GW_ERR_UPSTREAM_UNAVAILABLE when the upstream port is closed, naming no address', async () => {
    const res = await request(`${gw.url}/down/x?y=1`);
    expect(res.statusCode).toBe(502);
    expect(res.headers['content-type']).toBe('application/problem+json');
    const text = await res.body.text();
    const problem = JSON.parse(text) as Problem;
    expect(problem.code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    expect(problem.status).toBe(502);
    expect(problem.request_id).toBe(res.headers['x-request-id']);
    expectOpaque(text, problem, closedPort);
    await expectStillServing();
  });

  it('answers 504 GW_ERR_UPSTREAM_TIMEOUT when the upstream accepts but never answers within upstream.timeout', async () => {
    const started = Date.now();
    const res = await request(`${gw.url}/silent`);
    const elapsed = Date.now() - started;
    expect(res.statusCode).toBe(504);
    const text = await res.body.text();
    const problem = JSON.parse(text) as Problem;
    expect(problem.code).toBe('GW_ERR_UPSTREAM_TIMEOUT');
    expect(problem.status).toBe(504);
    expectOpaque(text, problem, silentPort);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(2000);
    await expectStillServing();
  });

  it('aborts the upstream request when the client gives up waiting (no upstream timeout needed)', async () => {
    await waitFor(() => silentSockets.size === 0);
    const started = Date.now();
    const err = await request(`${gw.url}/hang`, { signal: AbortSignal.timeout(150) }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.name).toMatch(/AbortError|TimeoutError/);
    expect(silentAccepted).toBe(1);
    // The gateway closes its upstream connection well before the route's 10s timeout.
    await waitFor(() => silentSockets.size === 0, { timeoutMs: 2000 });
    expect(Date.now() - started).toBeLessThan(2000);
    await waitFor(() => gw.logs.some((l) => l.msg === 'request' && l.route === 'hang'));
    const access = gw.logs.find((l) => l.msg === 'request' && l.route === 'hang')!;
    expect(access.completed).toBe(false);
    expect(access.code).toBeUndefined();
    await expectStillServing();
  });

  it('cuts the client response when the upstream resets mid-body (Content-Length)', async () => {
    const res = await request(`${gw.url}/reset`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe('1000000');
    let got = 0;
    await expect(
      (async () => {
        for await (const chunk of res.body) got += (chunk as Buffer).length;
      })(),
    ).rejects.toThrow();
    expect(got).toBeLessThan(1_000_000);
    await expectStillServing();
  });

  it('cuts the client response when the upstream resets mid-body (chunked): no clean end', async () => {
    const res = await request(`${gw.url}/reset-chunked`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    let got = 0;
    await expect(
      (async () => {
        for await (const chunk of res.body) got += (chunk as Buffer).length;
      })(),
    ).rejects.toThrow();
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThanOrEqual(64 * 1024);
    await expectStillServing();
  });

  it('logs the failures with their codes and keeps one access record per request', async () => {
    const access = gw.logs.filter((l) => l.msg === 'request');
    const byRoute = (name: string) => access.filter((l) => l.route === name);
    expect(byRoute('down').map((l) => [l.status, l.code])).toEqual([[502, 'GW_ERR_UPSTREAM_UNAVAILABLE']]);
    expect(byRoute('silent').map((l) => [l.status, l.code])).toEqual([[504, 'GW_ERR_UPSTREAM_TIMEOUT']]);
    expect(byRoute('reset').map((l) => [l.status, l.completed])).toEqual([[200, false]]);
    expect(byRoute('reset-chunked').map((l) => [l.status, l.completed])).toEqual([[200, false]]);
  });
});
