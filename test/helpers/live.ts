// Live-connection trigger tests: a real WebSocket echo upstream (the `ws` server) that records its side of
// each connection, and clients that record when and how they were closed.
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { waitFor } from './wait.ts';

export interface EchoUpstream {
  url: string;
  /** Upgrade requests as received, and whether the upstream's side of each has closed. */
  connections: Array<{ url: string; headers: IncomingMessage['headers']; closed: boolean }>;
  /** Server-sent event streams (GET …/events): one event at once, then held open; whether the gateway closed them. */
  streams: Array<{ url: string; closed: boolean }>;
  /** Plain HTTP requests received (their URLs). */
  requests: string[];
  close(): Promise<void>;
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const up: EchoUpstream = { url: '', connections: [], streams: [], requests: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    up.requests.push(req.url ?? '');
    if (!(req.url ?? '').endsWith('/events')) return void res.end('plain');
    const entry = { url: req.url ?? '', closed: false };
    up.streams.push(entry);
    res.on('close', () => (entry.closed = true));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.write('data: hello\n\n');
  });
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const entry = { url: req.url ?? '', headers: req.headers, closed: false };
    up.connections.push(entry);
    socket.on('close', () => (entry.closed = true));
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data) => ws.send(`echo:${data.toString()}`));
      ws.on('error', () => undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  up.close = () =>
    new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      wss.close();
      server.close(() => r());
    });
  return up;
}

export interface LiveClient {
  ws: WebSocket;
  /** Set when the client saw the connection close: code, reason and when (Date.now()). */
  closed: { code: number; reason: string; at: number } | undefined;
  /** Sends a message and waits for its echo (the connection is live end to end). */
  roundTrip(text: string): Promise<void>;
}

const opened: WebSocket[] = [];

/** Opens a WebSocket (ws:// or wss://) and waits for the 101; rejects on a refused handshake. */
export async function openLive(url: string, opts: WebSocket.ClientOptions = {}): Promise<LiveClient> {
  const ws = new WebSocket(url, opts);
  opened.push(ws);
  const client: LiveClient = {
    ws,
    closed: undefined,
    async roundTrip(text) {
      const echoed = new Promise<void>((resolve) => {
        const on = (d: Buffer) => {
          if (d.toString() !== `echo:${text}`) return;
          ws.off('message', on);
          resolve();
        };
        ws.on('message', on);
      });
      ws.send(text);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`no echo of ${text} within 2 s`)), 2000)));
      await Promise.race([echoed, late]).finally(() => clearTimeout(timer));
    },
  };
  ws.on('close', (code, reason) => (client.closed = { code, reason: reason.toString(), at: Date.now() }));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return client;
}

/** Waits (bounded by `ms`) until the client saw its connection close; returns the close and how long it took from `since`. */
export async function closedWithin(c: LiveClient, ms: number, since = Date.now()): Promise<{ code: number; reason: string; afterMs: number }> {
  const closed = await waitFor(() => c.closed, { timeoutMs: ms, what: 'the WebSocket to be closed' });
  return { code: closed.code, reason: closed.reason, afterMs: closed.at - since };
}

/** Terminates every client opened through openLive (afterEach/afterAll). */
export function closeAllLive(): void {
  for (const ws of opened.splice(0)) ws.terminate();
}
