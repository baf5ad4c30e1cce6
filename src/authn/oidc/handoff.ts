// login.host: one login for many apps. The app host keeps the browser's login transaction in its own
// __Host- cookie and sends the browser to the auth host; the auth host logs in (or already has) and hands the
// login back with a one-time code on GET https://app/.zt/handoff?code=…, which must come back to the host it
// was made for, in the browser that holds that transaction, within 30 s, once. No cookie has a Domain.
import { createHash, randomBytes } from 'node:crypto';
import { type RequestContext, GatewayError, Redirect } from '../../core/index.ts';
import { clearCookie, hostCookie, parseCookies } from './cookies.ts';
import { joinSessionCookie, sessionCookies } from './session-cookies.ts';
import type { FleetLogin } from './fleet.ts';
import type { HandoffCodes } from './handoff-codes.ts';
import { startLogin, txCookieName, type LoginContext } from './login.ts';
import { safeReturnTo } from './return-to.ts';
import { newSessionId, type Session } from './sessions.ts';

export const HANDOFF_PATH = '/.zt/handoff';
const TX_TTL_S = 600;
const MAX_PENDING_LOGINS = 3;
const TX_PURPOSE = 'handoff-tx';
const CODE = /^[A-Za-z0-9_-]{43}$/;

/** Why a handoff was refused: stable names, in the answer (`reason`) and the log. */
export type HandoffRefusal = 'handoff_unknown' | 'handoff_expired' | 'handoff_wrong_host' | 'handoff_unbound' | 'handoff_target';

export interface FleetDeps {
  readonly fleet: FleetLogin;
  readonly lc: LoginContext;
  readonly codes: HandoffCodes;
  readonly onEvent: (event: string, detail: Record<string, unknown>) => void;
}

export interface LoginOptions {
  acr?: string | undefined;
  maxAgeS?: number | undefined;
  prompt?: string | undefined;
  reason: 'login' | 'step_up';
}

const sha = (v: string): string => createHash('sha256').update(v).digest('base64url');

function refuse(d: FleetDeps, ctx: RequestContext, reason: HandoffRefusal, detail: string): GatewayError {
  // The code is never logged: the record names the host and why, not the query.
  d.onEvent('login_handoff_refused', { request_id: ctx.id, host: ctx.host.name, reason });
  return new GatewayError('GW_ERR_LOGIN_HANDOFF', detail, { extra: { reason } });
}

/**
 * On an app host: the transaction cookie here, then the auth host's /.zt/login with this origin and the
 * transaction's hash (the transaction id itself never leaves this host's cookie).
 */
export async function startAppLogin(d: FleetDeps, ctx: RequestContext, provider: string, returnTo: string, opts: LoginOptions): Promise<Redirect> {
  const { lc, fleet } = d;
  if (lc.publicOrigins.configured && lc.publicOrigins.listed(ctx) === undefined) throw new GatewayError('GW_ERR_NO_ROUTE');
  const txId = randomBytes(32).toString('base64url');
  const tx = sha(txId);
  const sealed = await lc.sealer.seal({ txId, returnTo: safeReturnTo(returnTo), exp: Date.now() + TX_TTL_S * 1000 }, TX_PURPOSE);
  const params = new URLSearchParams({ provider, target: lc.publicOrigins.originOf(ctx), tx });
  if (opts.acr) params.set('acr', opts.acr);
  if (opts.maxAgeS !== undefined) params.set('max_age', String(opts.maxAgeS));
  if (opts.prompt === 'login') params.set('prompt', 'login');
  const pending = [...parseCookies(ctx.rawHeaders).keys()].filter((n) => n.startsWith(`${lc.cookieName}-tx-`));
  const stale = pending.slice(0, Math.max(0, pending.length - (MAX_PENDING_LOGINS - 1)));
  const cookies = [hostCookie(txCookieName(lc.cookieName, tx), sealed, TX_TTL_S), ...stale.map(clearCookie)];
  return new Redirect(`${fleet.authOrigin(ctx)}/.zt/login?${params}`, cookies, opts.reason);
}

/** The step-up a login request asks the auth host for (only ever stronger: acr, max_age, prompt=login). */
function stepUpOf(params: URLSearchParams): LoginOptions {
  const acr = params.get('acr') ?? undefined;
  const maxAge = params.get('max_age');
  const maxAgeS = maxAge !== null && /^\d{1,9}$/.test(maxAge) ? Number(maxAge) : undefined;
  return {
    reason: acr !== undefined || maxAgeS !== undefined ? 'step_up' : 'login',
    ...(acr !== undefined && /^[\x21-\x7e]{1,200}$/.test(acr) ? { acr } : {}),
    ...(maxAgeS !== undefined ? { maxAgeS } : {}),
    ...(params.get('prompt') === 'login' ? { prompt: 'login' } : {}),
  };
}

/**
 * /.zt/login with login.host. On the auth host with `target` and `tx`: hand its login (or a new one) to that
 * app host. Anywhere else: return_to picks the host; a login for another of our hosts starts there.
 */
export async function fleetLogin(
  d: FleetDeps,
  ctx: RequestContext,
  provider: string,
  session: Session | undefined,
): Promise<{ location: string; cookies: readonly string[] }> {
  const params = new URLSearchParams(ctx.target.query.slice(1));
  const here = d.lc.publicOrigins.originOf(ctx);
  const target = params.get('target');
  if (target !== null && d.fleet.isAuthHost(ctx)) {
    const origin = d.fleet.ownOrigin(ctx, target);
    const tx = params.get('tx') ?? '';
    if (origin === undefined || !CODE.test(tx)) throw refuse(d, ctx, 'handoff_target', 'the login target is not one of this gateway’s hosts');
    const step = stepUpOf(params);
    const plain = step.acr === undefined && step.maxAgeS === undefined && step.prompt === undefined;
    // Already logged in here (and nothing stronger asked for): no trip to the IdP.
    if (plain && session !== undefined && session.provider === provider && session.login !== undefined) {
      return { location: await handoffUrl(d, session, { origin, tx }), cookies: [] };
    }
    return startLogin(d.lc, ctx, provider, { returnTo: '/', ...step, handoff: { origin, tx } });
  }
  const back = d.fleet.returnTo(ctx, params.get('return_to'));
  if (back.origin !== here) {
    // Another of our hosts: it starts the login itself (its own transaction cookie), through the auth host.
    const next = new URLSearchParams({ provider, return_to: back.path });
    return { location: `${back.origin}/.zt/login?${next}`, cookies: [] };
  }
  if (d.fleet.isAuthHost(ctx)) return startLogin(d.lc, ctx, provider, { returnTo: back.path, reason: 'login' });
  return startAppLogin(d, ctx, provider, back.path, { reason: 'login' });
}

/** A one-time code for `s` (the auth host's session), made for that app host and transaction. */
export async function handoffUrl(d: FleetDeps, s: Session, to: { origin: string; tx: string }): Promise<string> {
  // Tokens stay on the auth host, except the access token (pass_token): app hosts never refresh, so one
  // refresh token is never presented by two hosts (rotation with reuse detection would end the login).
  const record = {
    origin: to.origin,
    tx: to.tx,
    s: { provider: s.provider, sub: s.sub, sid: s.sid, login: s.login, claims: s.claims, expiresAt: s.expiresAt, accessToken: s.accessToken, accessExpiresAt: s.accessExpiresAt },
  };
  const code = await d.codes.mint(record);
  return `${to.origin}${HANDOFF_PATH}?code=${code}`;
}

/** GET /.zt/handoff?code=: this host's own session from a code made for it, in the browser that asked. */
export async function finishHandoff(d: FleetDeps, ctx: RequestContext): Promise<{ location: string; cookies: string[]; session: Session }> {
  const { lc } = d;
  const code = new URLSearchParams(ctx.target.query.slice(1)).get('code') ?? '';
  const rec = CODE.test(code) ? await d.codes.take(code) : undefined;
  if (rec === undefined) throw refuse(d, ctx, 'handoff_unknown', 'the login code is unknown or was already used');
  if (typeof rec.exp !== 'number' || rec.exp < lc.now()) throw refuse(d, ctx, 'handoff_expired', 'the login code has expired');
  if (rec.origin !== lc.publicOrigins.originOf(ctx)) throw refuse(d, ctx, 'handoff_wrong_host', 'the login code was made for another host');
  const tx = typeof rec.tx === 'string' ? rec.tx : '';
  const name = txCookieName(lc.cookieName, tx);
  const sealed = parseCookies(ctx.rawHeaders).get(name);
  const opened = sealed === undefined ? undefined : await lc.sealer.open(sealed, TX_PURPOSE);
  if (!opened || typeof opened.txId !== 'string' || sha(opened.txId) !== tx || typeof opened.exp !== 'number' || opened.exp < Date.now()) {
    throw refuse(d, ctx, 'handoff_unbound', 'the login code does not belong to this browser’s login');
  }
  const from = rec.s as Record<string, unknown>;
  const now = lc.now();
  const session: Session = {
    id: newSessionId(),
    provider: String(from.provider),
    sub: String(from.sub),
    sid: typeof from.sid === 'string' ? from.sid : undefined,
    login: typeof from.login === 'string' ? from.login : undefined,
    claims: (from.claims ?? {}) as Record<string, unknown>,
    createdAt: now,
    lastSeen: now,
    expiresAt: Math.min(typeof from.expiresAt === 'number' ? from.expiresAt : now, now + lc.ttlMs),
    accessToken: typeof from.accessToken === 'string' ? from.accessToken : undefined,
    accessExpiresAt: typeof from.accessExpiresAt === 'number' ? from.accessExpiresAt : undefined,
  };
  // A session this browser already had on this host ends here (no fixation), as at a callback.
  const sent = parseCookies(ctx.rawHeaders);
  const previous = joinSessionCookie(sent, lc.cookieName);
  if (previous !== undefined) {
    const old = await lc.store.read(previous).catch(() => undefined);
    if (old) await lc.store.destroy(old).catch(() => undefined);
  }
  const cookie = await lc.store.write(session);
  return {
    location: safeReturnTo(typeof opened.returnTo === 'string' ? opened.returnTo : '/'),
    cookies: [...sessionCookies(lc.cookieName, cookie, (session.expiresAt - now) / 1000, sent), clearCookie(name)],
    session,
  };
}
