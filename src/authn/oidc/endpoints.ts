// The relying party's endpoints under /.zt/, one function each. Success answers are written here; every
// refusal is a thrown GatewayError (the request handler answers it as problem JSON, with its code).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type RequestContext, GatewayError, identityToJson } from '../../core/index.ts';
import type { OidcClient } from './client.ts';
import { clearSessionCookies } from './session-cookies.ts';
import { finishHandoff, fleetLogin, handoffUrl, HANDOFF_PATH, type FleetDeps } from './handoff.ts';
import { finishLogin, startLogin, type LoginContext } from './login.ts';
import { LogoutTokenError, type LogoutTokenVerifier } from './logout.ts';
import { readForm, sendJson, sendLogoutPage, sendRedirect } from './respond.ts';
import { checkCrossSite, NO_EXCEPTIONS } from '../cross-site.ts';
import type { SessionAuth } from './session-auth.ts';
import type { Session, SessionStore } from './sessions.ts';

export interface EndpointDeps {
  readonly lc: LoginContext;
  readonly auth: SessionAuth;
  readonly clients: ReadonlyMap<string, OidcClient>;
  readonly store: SessionStore;
  readonly cookieName: string;
  readonly idleMs: number;
  /** /.zt/login without ?provider=: the first oidc provider. */
  readonly defaultProvider: string | undefined;
  readonly logoutTokens: LogoutTokenVerifier;
  readonly onEvent: (event: string, detail: Record<string, unknown>) => void;
  /** Sessions ended here: their live connections (on every instance) end too. */
  readonly onSessionEnd: (end: { provider: string; id?: string; sid?: string; sub?: string; before?: number; login?: string }) => void;
  /** login.host: one auth host for every host (handoff.ts); null without it. */
  readonly fleet: FleetDeps | null;
}

/** One request to an endpoint. */
export interface Exchange {
  readonly ctx: RequestContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The security headers every answer carries. */
  readonly security: readonly string[];
}

type Endpoint = (d: EndpointDeps, x: Exchange) => Promise<void>;

/** /.zt/callback: the IdP's answer to a login; a new session, then back where the login started. */
async function callback(d: EndpointDeps, x: Exchange): Promise<void> {
  const r = await finishLogin(d.lc, x.ctx);
  // login.host: the login started on an app host; the auth host keeps its session and hands it over.
  const location = r.handoff !== undefined && d.fleet !== null ? await handoffUrl(d.fleet, r.session, r.handoff) : r.location;
  sendRedirect(x.res, location, r.cookies, x.security);
}

/** GET /.zt/handoff?code= (login.host): this host's session from the auth host's one-time code. */
async function handoff(d: EndpointDeps, x: Exchange): Promise<void> {
  if (d.fleet === null) throw new GatewayError('GW_ERR_NO_ROUTE');
  const r = await finishHandoff(d.fleet, x.ctx);
  sendRedirect(x.res, r.location, r.cookies, x.security);
}

/**
 * POST /.zt/logout: ends the session here, then at the IdP (RP-initiated logout) when it offers that. Only a
 * POST from the gateway's own origin changes anything: a GET (an `<img>` on any page) or a cross-site form
 * would otherwise log the user out.
 */
async function logout(d: EndpointDeps, x: Exchange): Promise<void> {
  checkCrossSite(NO_EXCEPTIONS, x.ctx, () => d.lc.publicOrigins.originOf(x.ctx));
  const s = await d.auth.read(x.ctx.rawHeaders);
  const cookies = clearSessionCookies(d.cookieName);
  if (!s) return sendRedirect(x.res, '/', cookies, x.security);
  await d.store.destroy(s);
  d.onSessionEnd({ provider: s.provider, id: s.id });
  if (d.fleet !== null) {
    // login.host, logout: fleet: the login ends on every host (sessions and live connections); host: here only.
    if (d.fleet.fleet.logout === 'fleet' && s.login !== undefined) {
      await d.store.revoke(s.provider, { login: s.login });
      d.onSessionEnd({ provider: s.provider, login: s.login });
    }
    if (d.fleet.fleet.logout === 'host') return sendRedirect(x.res, '/', cookies, x.security);
  }
  const end = await endSessionUrl(d, s);
  sendRedirect(x.res, end?.href ?? '/', cookies, x.security);
}

async function endSessionUrl(d: EndpointDeps, s: Session): Promise<URL | undefined> {
  const client = d.clients.get(s.provider);
  if (!client) return undefined;
  return client.endSessionUrl({ client_id: client.cfg.client_id, ...(s.idToken ? { id_token_hint: s.idToken } : {}) }).catch(() => undefined);
}

/** GET /.zt/logout: a page with the POST form; it changes nothing. */
async function logoutPage(d: EndpointDeps, x: Exchange): Promise<void> {
  const s = await d.auth.read(x.ctx.rawHeaders);
  // The POST answers with a redirect to the IdP's end-session endpoint, and Chromium checks form-action
  // against redirect targets too: the page allows that origin besides its own.
  const end = s ? await endSessionUrl(d, s) : undefined;
  sendLogoutPage(x.res, end?.origin, x.security);
}

/**
 * /.zt/backchannel-logout: the IdP ends sessions (by sid or sub). A refused token is a 400 with a stable
 * code (and OIDC's `error: invalid_request`); why it was refused is logged, never answered.
 */
async function backchannelLogout(d: EndpointDeps, x: Exchange): Promise<void> {
  let target;
  try {
    const token = (await readForm(x.req)).get('logout_token') ?? '';
    target = await d.logoutTokens.verify(token);
  } catch (err) {
    if (err instanceof GatewayError) throw err; // the IdP's keys or the replay store down (503), a body too large
    const reason = err instanceof LogoutTokenError ? err.reason : 'rejected';
    d.onEvent('backchannel_logout_refused', { request_id: x.ctx.id, reason, error: (err as Error).message });
    throw new GatewayError('GW_ERR_BAD_REQUEST', 'the logout token was refused', { cause: err, extra: { error: 'invalid_request' } });
  }
  await d.store.revoke(target.provider, target);
  d.onSessionEnd({ ...target, before: d.lc.now() });
  sendJson(x.res, {}, x.security);
}

/** /.zt/userinfo: the session's identity (without the raw claims). */
async function userinfo(d: EndpointDeps, x: Exchange): Promise<void> {
  const s = await d.auth.read(x.ctx.rawHeaders);
  const client = s ? d.clients.get(s.provider) : undefined;
  if (!s || !client) throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'no session');
  const { claims: _claims, ...identity } = identityToJson(d.auth.identity(s, client));
  sendJson(x.res, identity, x.security);
}

/** /.zt/session: whether there is a session, and until when. */
async function session(d: EndpointDeps, x: Exchange): Promise<void> {
  const s = await d.auth.read(x.ctx.rawHeaders);
  const body = s
    ? {
        authenticated: true,
        provider: s.provider,
        subject: s.sub,
        expires_at: new Date(s.expiresAt).toISOString(),
        idle_expires_at: new Date(s.lastSeen + d.idleMs).toISOString(),
      }
    : { authenticated: false };
  sendJson(x.res, body, x.security);
}

/** /.zt/login?provider=&return_to=: starts a login on purpose (a link, not a protected navigation). */
async function login(d: EndpointDeps, x: Exchange): Promise<void> {
  const params = new URLSearchParams(x.ctx.target.query.slice(1));
  const provider = params.get('provider') ?? d.defaultProvider;
  if (!provider || !d.clients.has(provider)) throw new GatewayError('GW_ERR_NO_ROUTE');
  if (d.fleet !== null) {
    const f = await fleetLogin(d.fleet, x.ctx, provider, d.fleet.fleet.isAuthHost(x.ctx) ? await d.auth.read(x.ctx.rawHeaders) : undefined);
    return sendRedirect(x.res, f.location, f.cookies, x.security);
  }
  const r = await startLogin(d.lc, x.ctx, provider, { returnTo: params.get('return_to') ?? '/', reason: 'login' });
  sendRedirect(x.res, r.location, r.cookies, x.security);
}

/** `METHOD path` → endpoint. */
const ENDPOINTS: ReadonlyMap<string, Endpoint> = new Map([
  ['GET /.zt/callback', callback],
  ['GET /.zt/logout', logoutPage],
  ['POST /.zt/logout', logout],
  ['POST /.zt/backchannel-logout', backchannelLogout],
  ['GET /.zt/userinfo', userinfo],
  ['GET /.zt/session', session],
  ['GET /.zt/login', login],
  [`GET ${HANDOFF_PATH}`, handoff],
]);

/** Serves the request when it is one of the endpoints; false: not ours. */
export function serveEndpoint(d: EndpointDeps, x: Exchange): Promise<void> | false {
  const endpoint = ENDPOINTS.get(`${x.ctx.method} ${x.ctx.target.path}`);
  return endpoint === undefined ? false : endpoint(d, x);
}
