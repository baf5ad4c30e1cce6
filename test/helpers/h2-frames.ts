// A hand-written HTTP/2 client for what node:http2's client refuses to send: raw frames over TLS (ALPN h2)
// with header blocks in HPACK "literal without indexing, new name" form (RFC 7541 §6.2.2), no Huffman.
import tls from 'node:tls';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

function hpackInt(value: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** One header block: every field as a literal without indexing with a literal name (names sent as given). */
export function headerBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(Buffer.from([0x00]), hpackInt(n.length, 7, 0), n, hpackInt(v.length, 7, 0), v);
  }
  return Buffer.concat(parts);
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export function rstStream(stream: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export interface RawH2 {
  readonly socket: tls.TLSSocket;
  readonly frames: Frame[];
  send(buf: Buffer): boolean;
  /** Resolves when a frame matching `pred` arrives, or with undefined when the connection closes / times out. */
  waitFor(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame | undefined>;
  closed: Promise<void>;
  close(): void;
}

/** Opens a TLS connection with ALPN h2, sends the preface and empty SETTINGS, and ACKs the server's. */
export function rawH2(port: number, ca: string, servername = 'localhost'): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername, ALPNProtocols: ['h2'] });
    const frames: Frame[] = [];
    const waiters = new Set<() => void>();
    let buf = Buffer.alloc(0);
    let closed = false;
    const closedP = new Promise<void>((r) => socket.once('close', () => {
      closed = true;
      for (const w of waiters) w();
      r();
    }));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const f: Frame = { type: buf[3] as number, flags: buf[4] as number, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
        buf = buf.subarray(9 + len);
        if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        frames.push(f);
        for (const w of waiters) w();
      }
    });
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${String(socket.alpnProtocol)}`));
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
      resolve({
        socket,
        frames,
        send: (b) => (socket.writable ? socket.write(b) : false),
        waitFor(pred, timeoutMs = 3000) {
          return new Promise((r) => {
            let seen = 0;
            const check = (): void => {
              for (; seen < frames.length; seen++) {
                const f = frames[seen] as Frame;
                if (pred(f)) return done(f);
              }
              if (closed) done(undefined);
            };
            const timer = setTimeout(() => done(undefined), timeoutMs);
            const done = (f: Frame | undefined): void => {
              clearTimeout(timer);
              waiters.delete(check);
              r(f);
            };
            waiters.add(check);
            check();
          });
        },
        closed: closedP,
        close: () => socket.destroy(),
      });
    });
    socket.once('error', reject);
  });
}

/** The error code of an RST_STREAM or GOAWAY frame. */
export function errorCode(f: Frame): number {
  return f.type === FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
}

/** HPACK static-table index of a response's :status when sent indexed (8..14), as a status code. */
export function indexedStatus(f: Frame): number | undefined {
  const b = f.payload[0] ?? 0;
  const table: Record<number, number> = { 0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500 };
  return table[b];
}

export function requestHeaders(port: number, path = '/', extra: ReadonlyArray<readonly [string, string]> = []): Array<readonly [string, string]> {
  return [[':method', 'GET'], [':scheme', 'https'], [':authority', `localhost:${port}`], [':path', path], ...extra];
}
