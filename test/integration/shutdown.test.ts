// Graceful shutdown: stop accepting at once, let in-flight requests finish, cut what is left at drain_timeout.
import net, { type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { startGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

let upstream: Upstream;
let silent: net.Server;
let silentPort: number;
const silentSockets = new Set<Socket>();

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url !== '/slow') return false;
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow done'), 500);
    return true;
  });
  silent = net.createServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.resume();
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()));
  await upstream?.close();
});

function config(drain: string, upstreamUrl = upstream.url, timeout = '5s'): string {
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: ${drain} }
routes:
  - name: app
    match: { path: / }
    upstream: { url: ${upstreamUrl}, timeout: ${timeout}, connect_timeout: 1s }
    public: true
`;
}

function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

describe('graceful shutdown', () => {
  it('lets an in-flight request finish with 200 while stop() runs, and refuses new connections at once', async () => {
    const gw = await startGateway(config('5s'));
    const dispatcher = new Agent();
    try {
      const inflight = request(`${gw.url}/slow`, { dispatcher });
      await waitFor(() => upstream.received.some((r) => r.url === '/slow'));
      const started = Date.now();
      let stopped = false;
      const stopping = gw.gateway.stop().then(() => (stopped = true));
      // The listening socket is closed synchronously by stop(): a new connection is refused.
      expect(await connectError(gw.port)).toBe('ECONNREFUSED');
      const res = await inflight;
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('slow done');
      await stopping;
      expect(stopped).toBe(true);
      // Drained as soon as the request finished, long before drain_timeout.
      expect(Date.now() - started).toBeLessThan(2000);
      const done = gw.logs.find((l) => l.msg === 'zt-gateway stopped');
      expect(done?.drain).toBe('drained');
      const access = gw.logs.filter((l) => l.msg === 'request' && l.path === '/slow');
      expect(access.map((l) => [l.status, l.completed])).toEqual([[200, true]]);
    } finally {
      await dispatcher.close();
    }
  });

  it('closes idle keep-alive connections right away instead of waiting for drain_timeout', async () => {
    const gw = await startGateway(config('5s'));
    const dispatcher = new Agent({ keepAliveTimeout: 30_000 });
    try {
      const res = await request(`${gw.url}/idle`, { dispatcher });
      expect(res.statusCode).toBe(200);
      await res.body.text();
      const started = Date.now();
      await gw.gateway.stop();
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      await dispatcher.close();
    }
  });

  it('cuts a request the upstream never answers at drain_timeout (300ms) and finishes within ~1s', async () => {
    const gw = await startGateway(config('300ms', `http://127.0.0.1:${silentPort}`, '30s'));
    const dispatcher = new Agent();
    try {
      const inflight = request(`${gw.url}/never`, { dispatcher }).then(
        (res) => ({ status: res.statusCode, error: undefined as string | undefined }),
        (err: NodeJS.ErrnoException) => ({ status: 0, error: err.code ?? err.name }),
      );
      await waitFor(() => silentSockets.size > 0);
      const started = Date.now();
      // Bounded: a stop() that waits for the upstream's 30s timeout fails here after 3s, not at the test timeout.
      let guard: NodeJS.Timeout | undefined;
      await Promise.race([
        gw.gateway.stop(),
        new Promise((_, reject) => (guard = setTimeout(() => reject(new Error('stop() still running after 3s')), 3000))),
      ]).finally(() => clearTimeout(guard));
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(1200);
      const outcome = await inflight;
      expect(outcome.status).toBe(0);
      expect(outcome.error).toMatch(/UND_ERR_SOCKET|ECONNRESET|UND_ERR_CLOSED/);
      expect(gw.logs.find((l) => l.msg === 'zt-gateway stopped')?.drain).toBe('timeout');
      // The upstream request was abandoned too, not left to run into its 30s timeout.
      await waitFor(() => silentSockets.size === 0, { timeoutMs: 1000 });
    } finally {
      await dispatcher.close();
    }
  });

  it('closes open WebSocket connections at drain_timeout', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
    const wsPort = (wss.address() as AddressInfo).port;
    const gw = await startGateway(config('300ms', `http://127.0.0.1:${wsPort}`));
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/live`);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      ws.on('error', () => undefined);
      const started = Date.now();
      await gw.gateway.stop();
      expect(Date.now() - started).toBeLessThan(1200);
      expect(await closed).toBeGreaterThan(1000);
      await waitFor(() => wss.clients.size === 0, { timeoutMs: 1000 });
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });

  it('is idempotent: a second stop() returns without error', async () => {
    const gw = await startGateway(config('1s'));
    await gw.gateway.stop();
    await expect(gw.gateway.stop()).resolves.toBeUndefined();
    expect(await gw.gateway.reload()).toBe(false);
  });
});
