// The paths of /.zt/grants (grants-endpoint.ts serves them; pages link and post to them).
import { headerOf } from '../core/index.ts';
export const GRANTS_PATH = '/.zt/grants';
/** /.zt/grants/{id}/approve and /.zt/grants/{id}/deny */
export const GRANT_DECISION = /^\/\.zt\/grants\/([^/]+)\/(approve|deny)$/;

export function isGrantsPath(path: string): boolean {
  return path === GRANTS_PATH || path.startsWith(`${GRANTS_PATH}/`);
}

/** A browser's form post (not a script's JSON): answered with a 303 or a page, never problem+json. */
export function isPersonForm(ctx: { readonly method: string; readonly rawHeaders: readonly string[] }): boolean {
  if (ctx.method !== 'POST') return false;
  const type = (headerOf(ctx, 'content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase();
  return type === 'application/x-www-form-urlencoded' && (headerOf(ctx, 'accept') ?? '').includes('text/html');
}
