// Reads a fetched response body to the end, but never more than `max` bytes: a hostile or broken endpoint
// (an IdP's JWKS, a gateway's /metrics) must not make us buffer an unbounded body.
import type { Dispatcher } from 'undici';

export async function readBoundedBody(res: Dispatcher.ResponseData, max: number, tooLarge: () => Error): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    res.body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      res.body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
