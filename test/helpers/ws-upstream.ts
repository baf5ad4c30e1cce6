// A WebSocket upstream at the byte level: it answers the handshake itself and hands the test the raw socket,
// so a test can send frames of any size, split them across TCP writes, stall mid-frame, or keep its side
// open after the gateway closed its own.
import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RawWsUpstream {
  url: string;
  port: number;
  /** Upgraded sockets, in order of arrival. */
  sockets: Socket[];
  /** What to do with each upgraded socket (default: nothing; the test drives it). */
  onSocket: (socket: Socket, req: IncomingMessage) => void;
  close(): Promise<void>;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export async function startRawWsUpstream(): Promise<RawWsUpstream> {
  const server = http.createServer((_req, res) => res.end('plain'));
  const all = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    all.add(s);
    s.on('close', () => all.delete(s));
  });
  const up: RawWsUpstream = { url: '', port: 0, sockets: [], onSocket: () => undefined, close: async () => undefined };
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('error', () => undefined);
    up.sockets.push(socket);
    up.onSocket(socket, req);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as AddressInfo).port;
  up.url = `http://127.0.0.1:${up.port}`;
  up.close = () =>
    new Promise<void>((r) => {
      for (const s of all) s.destroy();
      server.close(() => r());
    });
  return up;
}

/** One unmasked (server → client) frame. */
export function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.alloc(2) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 126) head[1] = n;
  else if (n < 65536) {
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

export const text = (s: string): Buffer => frame(0x1, Buffer.from(s));
