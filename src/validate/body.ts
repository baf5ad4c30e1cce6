// Holds a request body up to a limit while it streams in: never more than `max` bytes in memory.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { GatewayError } from '../core/index.ts';

export type HeldBody = { readonly complete: true; readonly bytes: Buffer } | { readonly complete: false; readonly held: readonly Buffer[] };

export function readBounded(req: IncomingMessage, max: number): Promise<HeldBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      chunks.push(chunk);
      if (total > max) {
        cleanup();
        req.pause();
        resolve({ complete: false, held: chunks });
      }
    };
    const onEnd = () => {
      cleanup();
      resolve({ complete: true, bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total) });
    };
    const onError = (err?: unknown) => {
      cleanup();
      // The client broke the upload off: nobody may be left to answer, and it is no gateway failure.
      reject(new GatewayError('GW_ERR_BAD_REQUEST', 'the request body was cut off', { cause: err }));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
}

/** The held chunks, then the rest of the request as it streams (report-only forwarding of a large body). */
export function replay(held: readonly Buffer[], req: IncomingMessage): Readable {
  return Readable.from(
    (async function* () {
      for (const c of held) yield c;
      for await (const c of req) yield c as Buffer;
    })(),
    { objectMode: false },
  );
}
