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

const LOGOUT_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Log out</title></head>
<body><form method="post" action="/.zt/logout"><p>Log out of this site?</p><button type="submit">Log out</button></form></body></html>
`;

/**
 * The logout confirmation page: a POST form, with its own CSP (the route's or global one would not know the
 * IdP's end-session origin, which form-action must allow because the POST redirects there).
 */
export function sendLogoutPage(res: ServerResponse, endSessionOrigin: string | undefined, security: readonly string[]): void {
  const csp = `default-src 'none'; form-action 'self'${endSessionOrigin ? ` ${endSessionOrigin}` : ''}; frame-ancestors 'none'; base-uri 'none'`;
  const headers: string[] = ['content-type', 'text/html; charset=utf-8', 'content-length', String(Buffer.byteLength(LOGOUT_PAGE)), 'cache-control', 'no-store'];
  for (let i = 0; i < security.length; i += 2) {
    const name = (security[i] as string).toLowerCase();
    if (name === 'content-security-policy' || name === 'content-security-policy-report-only') continue;
    headers.push(security[i] as string, security[i + 1] as string);
  }
  headers.push('content-security-policy', csp);
  res.writeHead(200, headers);
  res.end(LOGOUT_PAGE);
}

/** A urlencoded form body, at most `limit` bytes. */
export async function readForm(req: IncomingMessage, limit = FORM_LIMIT): Promise<URLSearchParams> {
  // Too large: the request is not destroyed (that would reset the connection before the answer); the
  // answer closes the connection instead, and the unread rest of the body goes with it.
  const tooLarge = () => new GatewayError('GW_ERR_BODY_TOO_LARGE', `the body may be at most ${limit} bytes`, { headers: [['connection', 'close']] });
  const bytes = await readRequestBody(req, limit, tooLarge);
  return new URLSearchParams(bytes.toString('utf8'));
}
