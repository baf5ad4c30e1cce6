// A real upstream HTTP server that records exactly what it received (raw header list, target, body size).
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
  bodySha256: string;
}

export interface Upstream {
  url: string;
  port: number;
  received: Received[];
  server: Server;
  /** Forgets what was received so far: call in beforeEach where tests read `received` as a whole. */
  reset(): void;
  close(): Promise<void>;
}

export type Behaviour = (req: IncomingMessage, res: ServerResponse, body: Received) => boolean | void;

/** Default behaviour: 200 JSON echo of what arrived. `behaviour` can take over a request by returning true. */
export async function startUpstream(behaviour?: Behaviour): Promise<Upstream> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const rec: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
      };
      received.push(rec);
      if (behaviour?.(req, res, rec) === true) return;
      const text = JSON.stringify({ method: rec.method, url: rec.url, headers: rec.headers, bodyBytes: bytes, bodySha256: rec.bodySha256 });
      res.writeHead(200, { 'content-type': 'application/json', server: 'legacy/1.0', 'x-powered-by': 'PHP/5.2' });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    server,
    reset: () => {
      received.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Lower-cased header names the upstream saw, as a list (duplicates kept). */
export function headerNames(rec: Received): string[] {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) out.push((rec.rawHeaders[i] as string).toLowerCase());
  return out;
}
