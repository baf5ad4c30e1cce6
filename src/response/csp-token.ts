// The opaque token in a route's CSP report-uri (`/.zt/csp-report/<token>`): the report endpoint learns the
// route from it, never from the report's own (attacker-written) document-uri. HMAC of the route name, so it
// is stable across reloads and cluster workers, and, when session.secret is set, across restarts.
import { createHash, createHmac, randomBytes } from 'node:crypto';

/** Used when no session.secret is configured: tokens change when the process restarts. */
let processKey = randomBytes(32);

/** The process key as hex (a cluster primary hands it to its workers, so their tokens agree). */
export function processCspKey(): string {
  return processKey.toString('hex');
}

/** In a cluster worker, before its config is compiled: adopt the primary's key. */
export function shareProcessCspKey(hex: string): void {
  if (/^[0-9a-f]{64}$/.test(hex)) processKey = Buffer.from(hex, 'hex');
}

export type CspTokenKey = Buffer;

export function cspTokenKey(sessionSecret: string | undefined): CspTokenKey {
  return sessionSecret === undefined ? processKey : createHash('sha256').update('zt-gateway csp-report\0').update(sessionSecret).digest();
}

/** 22 base64url characters (128 bits). */
export function cspReportToken(key: CspTokenKey, routeName: string): string {
  return createHmac('sha256', key).update(routeName).digest('base64url').slice(0, 22);
}

export const CSP_TOKEN = /^[A-Za-z0-9_-]{22}$/;
