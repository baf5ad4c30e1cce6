// The OIDC relying party: one per config. Provides the `session` authenticators for oidc providers, the
// login redirect for browser navigations, step-up, and the /.zt/* endpoints it owns. Its stateful parts
// (session store, refresh lock, IdP clients) come from RpState, kept across reloads by config checksum.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Config } from '../../config/index.ts';
import type { RequestContext, Redirect, Identity } from '../../core/index.ts';
import type { Authenticator } from '../types.ts';
import { compilePublicOrigins, type PublicOrigins } from '../../normalize/index.ts';
import type { OidcClient } from './client.ts';
import { serveEndpoint, type EndpointDeps } from './endpoints.ts';
import { compileFleetLogin } from './fleet.ts';
import { startAppLogin, type FleetDeps } from './handoff.ts';
import { createHandoffCodes } from './handoff-codes.ts';
import { startLogin, type LoginContext } from './login.ts';
import { createLogoutTokenVerifier } from './logout.ts';
import { providerParts, type LoginProviderConfig } from './providers.ts';
import { createSealer } from './sealed.ts';
import { SessionAuth } from './session-auth.ts';
import { newlyReadClaims, sessionClaimNames } from './session-claims.ts';
import { MAX_CHUNKS, sessionHeaderBytes } from './session-cookies.ts';
import { isGatewayCookie } from './cookies.ts';
import { sessionParts } from './session-store.ts';
import type { Session } from './sessions.ts';
import { RpState } from './state.ts';

export { RpState } from './state.ts';
export type { Session } from './sessions.ts';

/**
 * Sessions ended on purpose: one (logout, by id), an IdP session (back-channel, by sid) or a subject's sessions
 * created up to `before` (back-channel by sub). Announced so that live connections they admitted end too.
 */
export interface SessionEnd {
  readonly provider: string;
  readonly id?: string | undefined;
  readonly sid?: string | undefined;
  readonly sub?: string | undefined;
  readonly before?: number | undefined;
  /** login.host with logout: fleet: every session of this auth-host login, on every host. */
  readonly login?: string | undefined;
}

export interface RelyingParty {
  readonly cookieName: string;
  /** The gateway's own cookies (session, its chunks, login transactions): never set by an upstream's answer. */
  readonly isOwnCookie: (name: string) => boolean;
  /** login.host's name: it serves /.zt/login even when only listen.public_urls names it. */
  readonly authHost: string | undefined;
  readonly authenticators: ReadonlyMap<string, Authenticator>;
  /** Serves /.zt/callback, logout, backchannel-logout, userinfo, session, login; false: not ours. */
  serve(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, security: readonly string[]): Promise<void> | false;
  startLogin(ctx: RequestContext, provider: string, opts: { acr?: string; maxAgeS?: number; prompt?: string; reason: 'login' | 'step_up' }): Promise<Redirect>;
  /** The session's current access token (for routes with pass_token). */
  accessToken(identity: Identity): string | undefined;
  /** Cookies the request's session wants refreshed (sliding idle timeout), set on the response. */
  pendingCookies(ctx: RequestContext): readonly string[] | undefined;
  /**
   * Ends a subject's sessions created up to `beforeMs`, for every oidc provider. `remote`: another instance
   * already did it in a shared (Redis) store, so only per-instance (sealed-cookie) revocations apply here.
   */
  revokeSessions(subject: string, beforeMs: number, remote: boolean): Promise<number>;
  /** A fleet logout announced (by this or another instance): that login's sessions stop opening here too. */
  revokeLogin(login: string): Promise<void>;
  /** The session a session identity was made from (any config generation's), for live connections. */
  sessionOf(identity: Identity): Session | undefined;
  /** A live connection used its session at `atMs`: it does not go idle (see SessionStore.touch). */
  touchSession(session: Session, atMs: number): Promise<void>;
  /** The session's latest use, or undefined when it has ended. */
  sessionSeen(session: Session): Promise<number | undefined>;
  readonly idleMs: number;
  /** A session's last use is rewritten at most this often (the sliding idle timeout's step). */
  readonly touchEveryMs: number;
}

export interface RpServices {
  redis: Redis | null;
  /** Kept across reloads: session stores with their revocations, refresh locks, IdP clients. */
  state: RpState;
  /**
   * The gateway's clock (ms): session idle/ttl and access-token expiry here, JWKS cooldown and max_age of
   * the jwt providers. Date.now but in tests, which advance their own instead of sleeping.
   */
  now: () => number;
  /** Told of every session ended here by logout or back-channel logout (the gateway announces it to all instances). */
  onSessionEnd?: ((end: SessionEnd) => void) | undefined;
}

export type RpEvents = (event: string, detail: Record<string, unknown>) => void;

/** A fresh services object for a config that is only compiled (validated), never served across reloads. */
export function standaloneServices(): RpServices {
  return { redis: null, state: new RpState(), now: Date.now };
}

export function createRelyingParty(
  config: Config,
  baseDir: string,
  services: RpServices,
  onEvent: RpEvents = () => undefined,
  publicOrigins: PublicOrigins = compilePublicOrigins(config.listen.public_urls),
): RelyingParty | null {
  const providers = Object.entries(config.identity_providers).filter((e): e is [string, LoginProviderConfig] => e[1].type === 'oidc' || e[1].type === 'github');
  if (providers.length === 0) return null;
  const sessionCfg = config.session;
  if (!sessionCfg?.secret) throw Object.assign(new TypeError('oidc providers need session.secret (at least 32 characters)'), { path: ['session', 'secret'] });
  const needed = sessionHeaderBytes(sessionCfg.cookie_name);
  if (!config.state?.redis && !config.state?.sentinel && config.listen.limits.max_header_bytes < needed) {
    throw Object.assign(new TypeError(`sealed sessions (no state.redis) may take ${MAX_CHUNKS} cookies: max_header_bytes must be at least ${needed}`), {
      path: ['listen', 'limits', 'max_header_bytes'],
    });
  }
  const { redis, state, now } = services;
  const sealer = createSealer([sessionCfg.secret, ...sessionCfg.old_secrets]);
  const idp = providerParts(state, providers, baseDir, now);
  const sessions = sessionParts(state, redis, sessionCfg, sealer, now);
  const { store, refresher } = sessions.parts;
  const clients = new Map<string, OidcClient>([...idp.parts].map(([name, p]) => [name, p.client]));
  const cookieName = sessionCfg.cookie_name;
  const keepClaims = sessionClaimNames(config, [...clients.values()].map((c) => c.mapping));
  const added = newlyReadClaims(state.keptClaims, keepClaims);
  if (added.length > 0) {
    // Sessions made under the running config do not have these: rules reading them see nothing until users log in again.
    onEvent('session_claims_missing', { claims: added, message: `existing sessions lack the claims ${added.join(', ')} that this config reads (until their users log in again)` });
  }
  state.keptClaims ??= keepClaims; // the first config; later ones once they run (RpState.commit)
    const fleetLogin = compileFleetLogin(config, publicOrigins, config.listen.public_urls);
  const lc: LoginContext = { clients, sealer, store, cookieName, ttlMs: sessionCfg.ttl, usedStates: state.usedStates, now, publicOrigins, keepClaims, fleet: fleetLogin !== null };
  const fleet: FleetDeps | null =
    fleetLogin === null ? null : { fleet: fleetLogin, lc, codes: createHandoffCodes(redis, state.handoffCodes, now), onEvent };
  const auth = new SessionAuth({ store, refresher, clients, cookieName, idleMs: sessionCfg.idle_timeout, now, sessionOf: state.sessionOf });
  const deps: EndpointDeps = {
    lc,
    auth,
    clients,
    store,
    cookieName,
    idleMs: sessionCfg.idle_timeout,
    defaultProvider: providers[0]?.[0],
    logoutTokens: createLogoutTokenVerifier(idp.parts, redis, state.seenLogoutTokens),
    onEvent,
    onSessionEnd: (end) => services.onSessionEnd?.(end),
    fleet,
  };
  const rp: RelyingParty = {
    cookieName,
    isOwnCookie: (name) => isGatewayCookie(name, cookieName),
    authHost: fleetLogin?.host,
    authenticators: auth.authenticators,
    startLogin: (ctx, provider, opts) =>
      fleet !== null && !fleet.fleet.isAuthHost(ctx)
        ? startAppLogin(fleet, ctx, provider, ctx.target.path + ctx.target.query, opts)
        : startLogin(lc, ctx, provider, { ...opts, returnTo: ctx.target.path + ctx.target.query }),
    accessToken: (identity) => auth.accessToken(identity),
    pendingCookies: (ctx) => auth.pendingCookies(ctx),
    async revokeSessions(subject, beforeMs, remote) {
      if (remote && store.kind === 'redis') return 0;
      let n = 0;
      for (const [name] of providers) n += await store.revoke(name, { sub: subject, before: beforeMs });
      return n;
    },
    async revokeLogin(login) {
      if (store.kind === 'cookie') await store.revoke('', { login });
    },
    serve: (ctx, req, res, security) => serveEndpoint(deps, { ctx, req, res, security }),
    sessionOf: (identity) => state.sessionOf.get(identity),
    touchSession: (s, atMs) => store.touch(s, atMs),
    sessionSeen: (s) => store.seen(s),
    idleMs: sessionCfg.idle_timeout,
    touchEveryMs: auth.touchEveryMs,
  };
  state.bind(rp, { sessions: new Set([sessions.key]), providers: idp.keys, claims: keepClaims });
  return rp;
}
