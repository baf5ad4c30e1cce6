// zt_websockets_active counts upgraded connections from the upstream's 101 until the client's socket
// closes; every upgrade is also a request (status 101) and a decision.
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { scrape } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';

let server: http.Server;
let wss: WebSocketServer;
let gw: TestGateway;

beforeAll(async () => {
  server = http.createServer((_req, res) => res.end('plain'));
  wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(d))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0 }
shutdown: { drain_timeout: 1s }
routes:
  - name: ws
    match: { path: /ws }
    upstream: { url: http://127.0.0.1:${port} }
    public: true
`);
});

afterAll(async () => {
  await gw?.close();
  for (const c of wss.clients) c.terminate();
  wss.close();
  await new Promise<void>((r) => server.close(() => r()));
});

async function open(): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws/chat`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // One round trip: the gateway has seen the upstream's 101 by now.
  const echoed = new Promise((r) => ws.once('message', r));
  ws.send('ping');
  await echoed;
  return ws;
}

async function active(): Promise<number | undefined> {
  return (await scrape(gw.gateway.adminUrl as string)).value('zt_websockets_active');
}

async function until(want: number): Promise<void> {
  await waitFor(async () => (await active()) === want, { timeoutMs: 2000, intervalMs: 20, what: `zt_websockets_active to be ${want}` });
  expect(await active()).toBe(want);
}

describe('zt_websockets_active', () => {
  it('goes up with each open WebSocket and back down when they close', async () => {
    expect(await active()).toBe(0);
    const a = await open();
    const b = await open();
    await until(2);
    a.close();
    await until(1);
    b.terminate();
    await until(0);
    const m = await scrape(gw.gateway.adminUrl as string);
    expect(m.value('zt_requests_total', { route: 'ws', status: '101' })).toBe(2);
    expect(m.value('zt_decisions_total', { route: 'ws', decision: 'public', reason: 'public-route' })).toBe(2);
  });
});
