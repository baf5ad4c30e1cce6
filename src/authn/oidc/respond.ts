// How the relying party's endpoints answer when they succeed: JSON or a redirect, never cached. Refusals are
// thrown GatewayErrors, answered as problem JSON by the request handler like every other refusal.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, readRequestBody } from '../../core/index.ts';

/** The largest form the relying party reads (a back-channel logout token is at most 8 KiB). */
export const FORM_LIMIT = 16 * 1024;

export function sendJson(res: ServerResponse, body: unknown, security: readonly string[]): void {
  const text = JSON.stringify(body);
  res.writeHead(200, ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(text)), 'cache-control', 'no-store', ...security]);
  res.end(text);
}

export function sendRedirect(res: ServerResponse, location: string, cookies: readonly string[], security: readonly string[]): void {
  const headers: string[] = ['location', location, 'cache-control', 'no-store', 'content-length', '0', ...security];
  for (const c of cookies) headers.push('set-cookie', c);
  res.writeHead(302, headers);
  res.end();
}

/** A urlencoded form body, at most `limit` bytes. */
export async function readForm(req: IncomingMessage, limit = FORM_LIMIT): Promise<URLSearchParams> {
  // Too large: the request is not destroyed (that would reset the connection before the answer); the
  // answer closes the connection instead, and the unread rest of the body goes with it.
  const tooLarge = () => new GatewayError('GW_ERR_BODY_TOO_LARGE', `the body may be at most ${limit} bytes`, { headers: [['connection', 'close']] });
  const bytes = await readRequestBody(req, limit, tooLarge);
  return new URLSearchParams(bytes.toString('utf8'));
}
