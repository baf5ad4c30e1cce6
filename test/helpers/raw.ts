// Raw HTTP/1.1 over a socket: for requests that a well-behaved client (undici) refuses to send.
import net from 'node:net';
import tls from 'node:tls';

export interface RawResponse {
  status: number;
  head: string;
  body: string;
  headers: Record<string, string>;
}

export function parseRaw(text: string): RawResponse {
  const split = text.indexOf('\r\n\r\n');
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 4);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), head, body, headers };
}

/** Sends `request` verbatim and reads until the server closes or `timeoutMs` passes (bounded). */
export function rawRequest(
  port: number,
  request: string | Buffer,
  opts: { tls?: { ca: string; servername?: string }; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = opts.tls
      ? tls.connect({ host: '127.0.0.1', port, ca: opts.tls.ca, servername: opts.tls.servername ?? 'localhost' })
      : net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => socket.destroy(), opts.timeoutMs ?? 3000);
    socket.once(opts.tls ? 'secureConnect' : 'connect', () => socket.write(request));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // A complete Content-Length response is enough: keep-alive servers would otherwise hold the socket.
      const text = Buffer.concat(chunks).toString('latin1');
      const r = parseRaw(text);
      const len = Number(r.headers['content-length'] ?? NaN);
      if (text.includes('\r\n\r\n') && Number.isFinite(len) && Buffer.byteLength(r.body, 'latin1') >= len) socket.destroy();
    });
    socket.on('error', (e) => {
      if (chunks.length === 0) reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseRaw(Buffer.concat(chunks).toString('latin1')));
    });
  });
}
