// Large generated bodies for streaming tests: never held in memory as a whole, hashed as they are produced.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

export const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;
// A prime number of distinct random blocks, cycled: a dropped, duplicated or reordered block changes the hash.
const BLOCKS = Array.from({ length: 17 }, () => randomBytes(BLOCK));

export interface GeneratedBody {
  readonly size: number;
  /** Resolves once the whole body has been produced (the hash of every byte handed out). */
  readonly sha256: Promise<string>;
  readonly stream: Readable;
}

/** A `size`-byte body produced block by block (backpressure respected by Readable.from). */
export function generatedBody(size: number): GeneratedBody {
  const hash = createHash('sha256');
  let resolveHash!: (h: string) => void;
  const sha256 = new Promise<string>((r) => (resolveHash = r));
  function* blocks(): Generator<Buffer> {
    let sent = 0;
    let i = 0;
    while (sent < size) {
      const block = BLOCKS[(i * 7) % BLOCKS.length] as Buffer;
      const chunk = size - sent >= BLOCK ? block : block.subarray(0, size - sent);
      hash.update(chunk);
      sent += chunk.length;
      i++;
      yield chunk;
    }
    resolveHash(hash.digest('hex'));
  }
  return { size, sha256, stream: Readable.from(blocks(), { objectMode: false }) };
}

/** Counts and hashes a stream without keeping it. */
export async function digest(stream: AsyncIterable<Buffer | Uint8Array>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  return { bytes, sha256: hash.digest('hex') };
}

export interface TestServer {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function listenHttp(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
