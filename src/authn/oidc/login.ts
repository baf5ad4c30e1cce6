// Authorization code flow with PKCE (S256), state and nonce, each bound to a short-lived sealed __Host-
// transaction cookie named after its state, so parallel logins in several tabs do not collide.
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { type RequestContext, GatewayError, Redirect } from '../../core/index.ts';
import type { OidcClient } from './client.ts';
import { clearCookie, hostCookie, parseCookies } from './cookies.ts';
import { safeReturnTo } from './return-to.ts';
import { joinSessionCookie, sessionCookies } from './session-cookies.ts';
import type { Sealer } from './sealed.ts';
import type { PublicOrigins } from '../../normalize/index.ts';
import { newSessionId, type Session, type SessionStore } from './sessions.ts';

const TX_TTL_S = 600;
/** Login transactions one browser may have open at once (one per tab that was sent to the IdP). */
const MAX_PENDING_LOGINS = 3;
/** ID token claims about the token itself rather than the user (dropped from sessions). */
const TOKEN_MECHANICS = new Set(['aud', 'exp', 'iat', 'nbf', 'nonce', 'at_hash', 'c_hash', 's_hash', 'jti', 'azp', 'sid', 'sub']);

export interface LoginContext {
  clients: ReadonlyMap<string, OidcClient>;
  sealer: Sealer;
  store: SessionStore;
  cookieName: string;
  ttlMs: number;
  /** States already used: a replayed callback is refused even if the IdP would not notice. */
  usedStates: Map<string, number>;
  /** The clock for a new session's created/last-seen/expiry times (session idle/ttl are judged on it). */
  now: () => number;
  /** listen.public_urls: the origin of redirect URIs, and (when set) the hosts that may start a login. */
  publicOrigins: PublicOrigins;
  /** The claims a new session keeps (session-claims.ts): what the config reads, and session.keep_claims. */
  keepClaims: ReadonlySet<string>;
  /** login.host is set: every new session carries a login id (a fleet logout ends its sessions everywhere). */
  fleet?: boolean;
}

/** login.host: the app host that sent the browser here, and that browser's transaction there (handoff.ts). */
export interface HandoffTarget {
  origin: string;
  tx: string;
}

/** The callback URL's origin: the host's public URL, else the scheme and host the client (or its trusted proxy) used. */
function callbackOrigin(lc: LoginContext, ctx: RequestContext): string {
  return lc.publicOrigins.originOf(ctx);
}

export const txCookieName = (base: string, state: string) =>
  `${base}-tx-${createHash('sha256').update(state).digest('base64url').slice(0, 10)}`;

export async function startLogin(
  lc: LoginContext,
  ctx: RequestContext,
  provider: string,
  opts: { returnTo: string; acr?: string; maxAgeS?: number; prompt?: string; reason: 'login' | 'step_up'; handoff?: HandoffTarget },
): Promise<Redirect> {
  const client = lc.clients.get(provider);
  if (!client) throw new GatewayError('GW_ERR_INTERNAL');
  // With public URLs configured, a host that is not one of them never sends anyone to the IdP.
  if (lc.publicOrigins.configured && lc.publicOrigins.listed(ctx) === undefined) throw new GatewayError('GW_ERR_NO_ROUTE');
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const verifier = oidc.randomPKCECodeVerifier();
  const url = await client.authorizationUrl({
    redirectUri: `${callbackOrigin(lc, ctx)}/.zt/callback`,
    state,
    nonce,
    challenge: await oidc.calculatePKCECodeChallenge(verifier),
    ...(opts.acr ? { acr: opts.acr } : {}),
    ...(opts.maxAgeS !== undefined ? { maxAge: opts.maxAgeS } : {}),
    ...(opts.prompt ? { prompt: opts.prompt } : {}),
  });
  const tx = await lc.sealer.seal(
    { state, nonce, verifier, provider, returnTo: safeReturnTo(opts.returnTo), maxAge: opts.maxAgeS, handoff: opts.handoff, exp: Date.now() + TX_TTL_S * 1000 },
    'login',
  );
  // Logins still pending in this browser (tabs restored on an expired session): keep the newest few, clear
  // the rest so the Cookie header never grows towards the 431 limit. Browsers list older cookies first.
  const pending = [...parseCookies(ctx.upstreamHeaders).keys()].filter((n) => n.startsWith(`${lc.cookieName}-tx-`));
  const stale = pending.slice(0, Math.max(0, pending.length - (MAX_PENDING_LOGINS - 1)));
  return new Redirect(url.href, [hostCookie(txCookieName(lc.cookieName, state), tx, TX_TTL_S), ...stale.map(clearCookie)], opts.reason);
}

export interface CallbackResult {
  location: string;
  cookies: string[];
  session: Session;
  /** login.host: the app host to hand the new login to. */
  handoff: HandoffTarget | undefined;
}

function loginFailed(detail: string, cause?: unknown): GatewayError {
  return new GatewayError('GW_ERR_UNAUTHENTICATED', `login failed: ${detail}`, cause === undefined ? undefined : { cause });
}

/** /.zt/callback: checks the transaction, exchanges the code, and starts a NEW session (no fixation). */
export async function finishLogin(lc: LoginContext, ctx: RequestContext): Promise<CallbackResult> {
  const params = new URLSearchParams(ctx.target.query.slice(1));
  const state = params.get('state');
  if (!state) throw loginFailed('missing state');
  const name = txCookieName(lc.cookieName, state);
  const sealed = parseCookies(ctx.rawHeaders).get(name);
  const tx = sealed === undefined ? undefined : await lc.sealer.open(sealed, 'login');
  if (!tx || tx.state !== state || typeof tx.exp !== 'number' || tx.exp < Date.now()) throw loginFailed('unknown or expired login transaction');
  if (lc.usedStates.has(state)) throw loginFailed('login transaction already used');
  lc.usedStates.set(state, tx.exp);
  for (const [s, exp] of lc.usedStates) if (exp < Date.now()) lc.usedStates.delete(s);
  const error = params.get('error');
  if (error) throw loginFailed(`the identity provider answered ${error.replace(/[^A-Za-z0-9_.-]/g, '')}`);
  const client = lc.clients.get(String(tx.provider));
  if (!client) throw loginFailed('unknown identity provider');

  const own = callbackOrigin(lc, ctx);
  const callbackUrl = new URL(`${own}${ctx.target.path}${ctx.target.query}`);
  let tokens;
  try {
    tokens = await client.exchange(
      callbackUrl,
      { verifier: String(tx.verifier), state, nonce: String(tx.nonce), ...(typeof tx.maxAge === 'number' ? { maxAge: tx.maxAge } : {}) },
      `${own}/.zt/callback`,
    );
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw loginFailed('the authorization code or ID token was rejected', err);
  }
  const sub = client.mapping.subject(tokens.claims);
  if (sub === undefined) throw loginFailed('the ID token has no subject');
  if (client.mapping.groups(tokens.claims) === null) throw loginFailed('the identity carries too many groups');
  // Only the claims the config reads (rules, mappings, identity headers, assertion) and session.keep_claims
  // are kept: a big identity (hundreds of groups, profile claims) costs only what is needed.
  const keep: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tokens.claims)) if (lc.keepClaims.has(k) && !TOKEN_MECHANICS.has(k) && v !== undefined) keep[k] = v;
  const now = lc.now();
  const session: Session = {
    id: newSessionId(),
    provider: client.name,
    sub,
    sid: typeof tokens.claims.sid === 'string' ? tokens.claims.sid : undefined,
    login: lc.fleet ? newSessionId() : undefined,
    claims: keep,
    createdAt: now,
    lastSeen: now,
    expiresAt: now + lc.ttlMs,
    refreshToken: tokens.refreshToken,
    accessToken: tokens.accessToken,
    accessExpiresAt: tokens.accessExpiresAt,
    accessRefreshAt: tokens.accessRefreshAt,
    idToken: lc.store.kind === 'redis' ? tokens.idToken : undefined,
  };
  // A session the browser already had (its own earlier login, or one an attacker planted) ends here: the
  // new login never continues it (no fixation) and an older, weaker login cannot be replayed after step-up.
  const sent = parseCookies(ctx.rawHeaders);
  const previous = joinSessionCookie(sent, lc.cookieName);
  if (previous) {
    const old = await lc.store.read(previous).catch(() => undefined);
    if (old) await lc.store.destroy(old).catch(() => undefined);
  }
  const cookie = await lc.store.write(session);
  return {
    location: safeReturnTo(typeof tx.returnTo === 'string' ? tx.returnTo : '/'),
    cookies: [...sessionCookies(lc.cookieName, cookie, lc.ttlMs / 1000, sent), clearCookie(name)],
    session,
    handoff: handoffOf(tx.handoff),
  };
}

function handoffOf(v: unknown): HandoffTarget | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const { origin, tx } = v as Record<string, unknown>;
  return typeof origin === 'string' && typeof tx === 'string' ? { origin, tx } : undefined;
}
