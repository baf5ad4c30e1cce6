// Every upgraded WebSocket is a live connection: registered in runtime.live from the upstream's 101 until it
// ends. A trigger's end(reason) reaches the client as a close frame (1008 + the reason's text) at the next
// frame boundary, even mid-frame and across TCP writes, and closes the upstream side; with no boundary within
// 1 s both sockets are destroyed. A side that ends takes the other with it (after a 2 s grace at most).
// Two audit records (opened with the 101, closed with the end reason), gauge and close counter.
import net, { type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { scrape } from '../helpers/metrics.ts';
import { frame, startRawWsUpstream, text, type RawWsUpstream } from '../helpers/ws-upstream.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

let up: RawWsUpstream;
let gw: TestGateway;
const clients: WebSocket[] = [];

beforeAll(async () => {
  up = await startRawWsUpstream();
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0 }
shutdown: { drain_timeout: 1s }
routes:
  - name: short
    match: { path: /short }
    upstream: { url: ${up.url} }
    public: true
    websocket: { max_lifetime: 300ms }
  - name: ws
    match: { path: /ws }
    upstream: { url: ${up.url} }
    public: true
`);
});

afterEach(() => {
  for (const c of clients.splice(0)) c.terminate();
  up.onSocket = () => undefined;
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
});

type Client = WebSocket & { id: string; received: Buffer[]; closed: Promise<[number, string]> };

/** A client that keeps every message it receives (from the first, which may arrive with the handshake). */
async function open(path = '/ws/x'): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}${path}`) as Client;
  ws.received = [];
  ws.closed = new Promise((r) => ws.once('close', (code: number, reason: Buffer) => r([code, reason.toString()])));
  ws.on('message', (d: Buffer) => ws.received.push(d));
  ws.on('error', () => undefined);
  clients.push(ws);
  ws.once('upgrade', (res) => (ws.id = String(res.headers['x-request-id'])));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', () => reject(new Error('no 101')));
  });
  return ws;
}

const live = () => gw.gateway.runtime.live;
/** The live connection opened by the request with this id (earlier tests' connections may still be in their grace). */
const connOf = (id: string) => {
  const all = [...live()].filter((c) => c.ctx.id === id);
  expect(all).toHaveLength(1);
  return all[0] as NonNullable<(typeof all)[0]>;
};
const isGone = (id: string) => () => ![...live()].some((c) => c.ctx.id === id);
/**
 * The upstream's socket for the next upgrade, with whether the gateway ended or closed it. It answers a FIN
 * with its own, as servers do, unless `keepOpen`.
 */
function nextUpstream(keepOpen = false): Promise<{ socket: Socket; ended: () => boolean; closed: () => boolean }> {
  return new Promise((resolve) =>
    (up.onSocket = (socket) => {
      let ended = false;
      let closed = false;
      socket.on('end', () => (ended = true)).on('close', () => (closed = true));
      if (!keepOpen) socket.on('end', () => socket.end());
      resolve({ socket, ended: () => ended, closed: () => closed });
    }),
  );
}
const audits = (id: string) => gw.logs.filter((l) => l.audit === true && l.request_id === id);

describe('registration', () => {
  it('registers an upgraded WebSocket with its context until it ends', async () => {
    const upstream = nextUpstream();
    const ws = await open();
    const { socket, ended } = await upstream;
    socket.write(text('hello'));
    await waitFor(() => ws.received.length === 1, { what: 'the first message' });
    const conn = connOf(ws.id);
    expect(conn.kind).toBe('websocket');
    expect(conn.ctx.route?.name).toBe('ws');
    expect(conn.openedAt).toBeGreaterThan(Date.now() - 5000);
    conn.end('logout');
    expect(await ws.closed).toEqual([1008, 'session ended']);
    await waitFor(ended, { what: 'the upstream side to be ended' });
    await waitFor(isGone(ws.id), { what: 'the connection to leave the registry' });
  });
});

describe('end(reason) with a close frame', () => {
  it('waits for the end of a large frame split across TCP writes, then sends 1008 and closes the upstream side', async () => {
    const upstream = nextUpstream();
    const ws = await open();
    const { socket, ended } = await upstream;
    // Small frames, several per write and one split between its header and its payload.
    for (let i = 0; i < 40; i++) socket.write(Buffer.concat([text(`a${i}`), text(`b${i}`)]));
    const split = text('split-frame');
    socket.write(split.subarray(0, 1));
    await sleep(5);
    socket.write(split.subarray(1));
    const big = frame(0x2, Buffer.alloc(300_000, 7));
    const half = 150_003;
    socket.write(big.subarray(0, half));
    await waitFor(() => ws.received.length === 81, { what: 'the small frames' });
    await sleep(100); // the first half of the big frame has reached the gateway: end() lands mid-frame
    connOf(ws.id).end('revoked');
    await sleep(50);
    expect(ended()).toBe(false); // still relaying the frame in progress
    socket.write(big.subarray(half, half + 1000));
    await sleep(20);
    // The rest of the big frame and a frame after it in one write: the close frame goes between them.
    socket.write(Buffer.concat([big.subarray(half + 1000), text('after the boundary')]));
    expect(await ws.closed).toEqual([1008, 'credential revoked']);
    expect(ws.received).toHaveLength(82);
    expect(ws.received[80]?.toString()).toBe('split-frame');
    expect(ws.received[81]?.length).toBe(300_000);
    await waitFor(ended, { what: 'the upstream to see its socket ended' });
  });

  it('ends a connection whose upstream sends frames continuously: a clean 1008, every frame whole', async () => {
    const upstream = nextUpstream();
    const ws = await open();
    const { socket, ended } = await upstream;
    let n = 0;
    const pump = setInterval(() => {
      // Each tick: a frame whose payload arrives in two writes, and one of 70 000 bytes (64-bit length).
      const f = text(`tick-${n++}-${'x'.repeat(200)}`);
      socket.write(f.subarray(0, 100));
      socket.write(Buffer.concat([f.subarray(100), frame(0x2, Buffer.alloc(70_000, n & 0xff))]));
    }, 2);
    try {
      await waitFor(() => ws.received.length > 60, { what: 'a stream of frames' });
      connOf(ws.id).end('suspended');
      expect(await ws.closed).toEqual([1008, 'subject suspended']);
    } finally {
      clearInterval(pump);
    }
    for (const [i, m] of ws.received.entries()) {
      if (i % 2 === 0) expect(m.toString()).toMatch(/^tick-\d+-x{200}$/);
      else expect(m.length).toBe(70_000);
    }
    await waitFor(ended, { what: 'the upstream to see its socket ended' });
  });

  it('destroys both sides when no frame boundary comes within 1 s (an upstream stalled mid-frame)', async () => {
    const upstream = nextUpstream();
    const ws = await open();
    const { socket, ended } = await upstream;
    const f = frame(0x2, Buffer.alloc(10_000, 1));
    socket.write(f.subarray(0, 5000)); // half a frame, then nothing
    await sleep(100);
    const started = Date.now();
    connOf(ws.id).end('expired');
    const [code] = await ws.closed;
    const took = Date.now() - started;
    expect(code).toBe(1006); // no close frame could be sent: the connection was cut
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(1800);
    await waitFor(ended, { what: 'the upstream socket to be closed' });
    await waitFor(isGone(ws.id), { what: 'the connection to leave the registry' });
    expect(ws.received).toHaveLength(0);
  });

  it('ends with reason `lifetime` after the route’s max_lifetime', async () => {
    void nextUpstream();
    const started = Date.now();
    const ws = await open('/short/x');
    expect(await ws.closed).toEqual([1008, 'connection lifetime reached']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    await waitFor(isGone(ws.id), { timeoutMs: 3000, what: 'the connection to leave the registry' });
    await waitFor(() => audits(ws.id).length === 2, { timeoutMs: 3000, what: 'the closing record' });
    expect(audits(ws.id)[1]).toMatchObject({ connection: 'closed', end_reason: 'lifetime', route: 'short' });
  });
});

/** A client at the socket level that keeps its side open after the gateway's FIN (allowHalfOpen). */
async function rawClient(path: string): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = net.connect({ port: gw.port, host: '127.0.0.1', allowHalfOpen: true });
  let closed = false;
  socket.on('close', () => (closed = true)).on('error', () => undefined);
  const key = createHash('sha1').update(String(Math.random())).digest('base64').slice(0, 24);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let head = '';
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.resume();
      resolve();
    };
    socket.on('data', onData);
  });
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  return { socket, closed: () => closed };
}

describe('half-open connections', () => {
  it('client ends, upstream keeps its side open: the upstream is ended, then both destroyed after the grace', async () => {
    const upstream = nextUpstream(true);
    const ws = await open();
    const { socket, ended, closed } = await upstream;
    const id = ws.id;
    const started = Date.now();
    (ws as unknown as { _socket: Socket })._socket.end(); // FIN from the client, no close frame
    await waitFor(ended, { what: 'the upstream to get the FIN' });
    // The upstream keeps talking into its open half: its writes fail once the gateway destroyed the socket.
    const talk = setInterval(() => socket.write(text('still here')), 50);
    try {
      await waitFor(closed, { timeoutMs: 3500, what: 'the gateway to destroy the upstream socket' });
    } finally {
      clearInterval(talk);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    await waitFor(isGone(id), { what: 'the connection to leave the registry' });
    await waitFor(() => audits(id).length === 2, { what: 'the closing record' });
    expect(audits(id)[1]).toMatchObject({ connection: 'closed', end_reason: 'client' });
  });

  it('upstream ends, client keeps its side open: the client is ended, then both destroyed after the grace', async () => {
    const upstream = nextUpstream();
    const client = await rawClient('/ws/raw');
    const { socket } = await upstream;
    let clientEnded = false;
    client.socket.on('end', () => (clientEnded = true));
    const conn = [...live()].find((c) => c.ctx.target.path === '/ws/raw');
    const id = conn?.ctx.id as string;
    const started = Date.now();
    socket.end();
    await waitFor(() => clientEnded, { what: 'the client to get the FIN' });
    // A masked 2-byte ping every 50 ms into the client's open half: fails once the gateway destroyed it.
    const talk = setInterval(() => client.socket.write(Buffer.from([0x89, 0x80, 1, 2, 3, 4])), 50);
    try {
      await waitFor(client.closed, { timeoutMs: 3500, what: 'the gateway to destroy the client socket' });
    } finally {
      clearInterval(talk);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    await waitFor(isGone(id), { what: 'the connection to leave the registry' });
    await waitFor(() => audits(id).length === 2, { what: 'the closing record' });
    expect(audits(id)[1]).toMatchObject({ connection: 'closed', end_reason: 'upstream' });
  });
});

describe('audit and metrics', () => {
  it('writes one record at the 101 and one at the end, with the request id, duration, bytes and end reason', async () => {
    const upstream = nextUpstream();
    const ws = await open();
    const { socket } = await upstream;
    socket.on('data', () => undefined);
    const conn = connOf(ws.id);
    const id = ws.id;
    await waitFor(() => audits(id).length === 1, { what: 'the opening record' });
    expect(audits(id)[0]).toMatchObject({ msg: 'decision', status: 101, route: 'ws', upgrade: 'websocket', connection: 'opened', decision: 'public' });
    const m1 = await scrape(gw.gateway.adminUrl as string);
    expect(m1.value('zt_live_connections', { route: 'ws', kind: 'websocket' })).toBe(1);
    expect(m1.value('zt_websockets_active')).toBe(1);
    ws.send('x'.repeat(1000));
    socket.write(text('y'.repeat(2000)));
    await waitFor(() => ws.received.length === 1, { what: 'the message' });
    const before = m1.value('zt_live_connection_closes_total', { route: 'ws', reason: 'policy' }) ?? 0;
    conn.end('policy');
    expect(await ws.closed).toEqual([1008, 'access denied by policy']);
    await waitFor(() => audits(id).length === 2, { timeoutMs: 3000, what: 'the closing record' });
    const closing = audits(id)[1] as Record<string, unknown>;
    expect(closing).toMatchObject({ msg: 'decision', status: 101, route: 'ws', upgrade: 'websocket', connection: 'closed', end_reason: 'policy' });
    expect(closing.bytes_in).toBeGreaterThanOrEqual(1000);
    expect(closing.bytes_out).toBeGreaterThanOrEqual(2000 + 4 + 2 + 23); // the message and the close frame
    expect(typeof closing.duration_ms).toBe('number');
    const m2 = await scrape(gw.gateway.adminUrl as string);
    expect(m2.value('zt_live_connections', { route: 'ws', kind: 'websocket' })).toBe(0);
    expect(m2.value('zt_websockets_active')).toBe(0);
    expect(m2.value('zt_live_connection_closes_total', { route: 'ws', reason: 'policy' })).toBe(before + 1);
  });
});
