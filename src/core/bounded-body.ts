// Reads a fetched response body to the end, but never more than `max` bytes: a hostile or broken endpoint
// (an IdP's JWKS, a gateway's /metrics) must not make us buffer an unbounded body.
// Also a received request's body (the OIDC back-channel logout form).

/** What is read: a fetched response (undici's ResponseData fits), or a request's headers and body stream. */
export interface BoundedSource {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: AsyncIterable<unknown> & { destroy(): unknown };
}

export async function readBoundedBody(res: BoundedSource, max: number, tooLarge: () => Error): Promise<Buffer> {
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

/** The request-side source: reading stops early without destroying the request, so the answer still reaches
 * the client (a refusal for a too-large body should close the connection: the unread rest goes with it). */
export interface RequestBody {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  iterator(options: { destroyOnReturn: boolean }): AsyncIterableIterator<unknown>;
}

/** A received request's body, at most `max` bytes (the one body reader for the admin API, grants and OIDC). */
export function readRequestBody(req: RequestBody, max: number, tooLarge: () => Error): Promise<Buffer> {
  const body = Object.assign(req.iterator({ destroyOnReturn: false }), { destroy: () => undefined });
  return readBoundedBody({ headers: req.headers, body }, max, tooLarge);
}
