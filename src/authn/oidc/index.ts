// The OIDC relying party: one per config. Provides the `session` authenticators for oidc providers, the
// login redirect for browser navigations, step-up, and the /.zt/* endpoints it owns.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config, OidcProviderConfig } from '../../config/index.ts';
import { type RequestContext, GatewayError, Redirect, type Identity, identityToJson } from '../../core/index.ts';
import { REALM, type AuthRequest, type Authenticator } from '../types.ts';
import { createOidcClient, type OidcClient } from './client.ts';
import { clearCookie, hostCookie, parseCookies } from './cookies.ts';
import { finishLogin, startLogin, type LoginContext } from './login.ts';
import { createLogoutTokenVerifier } from './logout.ts';
import { createSealer } from './sealed.ts';
import { createCookieStore, createRedisStore, type Session, type SessionStore } from './sessions.ts';

export interface RelyingParty {
  readonly cookieName: string;
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
}

export interface RpServices {
  redis: Redis | null;
  /** Kept across reloads so revocations and refresh locks survive. */
  cache: Map<string, unknown>;
}

const REFRESH_EARLY_S = 60;
const TOUCHED_ENTRIES = 10_000;
/** Compare-and-delete: a lock that expired and was taken by another instance is not ours to release. */
const RELEASE_LOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
/** A refresh result is reused this long for requests that still carry the pre-refresh cookie. */
const REFRESH_REUSE_MIN_MS = 30_000;
const REFRESH_REUSE_MAX_MS = 600_000;

export function createRelyingParty(config: Config, baseDir: string, services: RpServices): RelyingParty | null {
  const providers = Object.entries(config.identity_providers).filter((e): e is [string, OidcProviderConfig] => e[1].type === 'oidc');
  if (providers.length === 0) return null;
  const sessionCfg = config.session;
  if (!sessionCfg?.secret) throw Object.assign(new TypeError('oidc providers need session.secret (at least 32 characters)'), { path: ['session', 'secret'] });
  const sealer = createSealer([sessionCfg.secret, ...sessionCfg.old_secrets]);
  const storeKey = `store|${services.redis ? 'redis' : 'cookie'}|${sessionCfg.secret}|${sessionCfg.ttl}|${sessionCfg.idle_timeout}`;
  let store = services.cache.get(storeKey) as SessionStore | undefined;
  if (!store) {
    store = services.redis ? createRedisStore(services.redis, sealer, sessionCfg.idle_timeout) : createCookieStore(sealer, sessionCfg.ttl);
    services.cache.set(storeKey, store);
  } else store.useSealer(sealer); // the same store (its revocations survive the reload), today's secrets
  const sessions = store;
  const clients = new Map<string, OidcClient>();
  for (const [name, cfg] of providers) {
    try {
      clients.set(name, createOidcClient(name, cfg, baseDir));
    } catch (err) {
      throw Object.assign(new TypeError((err as Error).message), { path: ['identity_providers', name] });
    }
  }
  const cookieName = sessionCfg.cookie_name;
  const lc: LoginContext = { clients, sealer, store: sessions, cookieName, ttlMs: sessionCfg.ttl, usedStates: new Map() };
  const logoutTokens = createLogoutTokenVerifier(clients, services.redis);
  const tokensOf = new WeakMap<Identity, string>();
  const pending = new WeakMap<RequestContext, string[]>();
  const refreshing = new Map<string, Promise<Session>>();
  /** session id → the refresh token that was spent and what it bought (late requests with the old cookie). */
  const refreshed = new Map<string, { spent: string; session: Session; until: number }>();
  // Sliding idle timeout: the session's lastSeen is rewritten (a new cookie) at most this often.
  const touchEveryMs = Math.max(1, Math.min(60_000, Math.floor(sessionCfg.idle_timeout / 10)));
  /** session id → its latest touched copy and the cookie sealed for it (bounded, oldest dropped first). */
  const touched = new Map<string, { session: Session; cookie: string }>();

  // A session read from the cache is the same object each time: so is its identity.
  const identities = new WeakMap<Session, Identity>();
  function toIdentity(s: Session, client: OidcClient): Identity {
    const known = identities.get(s);
    if (known !== undefined) return known;
    const c = s.claims;
    const groups = c[client.cfg.claims.groups];
    const email = c[client.cfg.claims.email];
    const identity: Identity = Object.freeze({
      subject: s.sub,
      provider: s.provider,
      issuer: client.cfg.issuer,
      method: 'session',
      email: typeof email === 'string' ? email : undefined,
      emailVerified: typeof email === 'string' && c[client.cfg.claims.email_verified] === true,
      groups: Object.freeze(Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : typeof groups === 'string' ? [groups] : []),
      claims: Object.freeze({ ...c }),
      spiffeId: undefined,
      authTime: typeof c.auth_time === 'number' ? c.auth_time : Math.floor(s.createdAt / 1000),
      amr: Object.freeze(Array.isArray(c.amr) ? c.amr.filter((a): a is string => typeof a === 'string') : []),
      acr: typeof c.acr === 'string' ? c.acr : undefined,
      expiresAt: Math.floor(s.expiresAt / 1000),
    });
    if (s.accessToken) tokensOf.set(identity, s.accessToken);
    identities.set(s, identity);
    return identity;
  }

  /**
   * One refresh per session at a time (single-flight in this process; with Redis, a lock that outlives the
   * IdP call across instances, and the result stored before the lock is released). Requests that arrive
   * later with the pre-refresh cookie reuse the result instead of spending the rotated refresh token again.
   */
  async function refresh(s: Session, client: OidcClient): Promise<Session> {
    const spent = s.refreshToken as string;
    const reuse = refreshed.get(s.id);
    if (reuse && reuse.spent === spent && reuse.until > Date.now()) return { ...reuse.session, lastSeen: Math.max(reuse.session.lastSeen, s.lastSeen) };
    const inflight = refreshing.get(s.id);
    if (inflight) return inflight;
    const run = (async () => {
      const lockKey = `ztgw:sess:lock:${s.id}`;
      // The lock outlives the IdP call (its timeout, with margin) and is released only by its owner.
      const owner = randomBytes(16).toString('base64url');
      if (services.redis) {
        const got = await services.redis.set(lockKey, owner, 'PX', client.cfg.timeout * 2 + 5_000, 'NX').catch(() => null);
        if (got === null) {
          // Another instance is refreshing: wait (bounded) for its result to land in the store.
          for (let i = 0; i < 50; i++) {
            await new Promise((r) => setTimeout(r, 100));
            const text = await services.redis.get(`ztgw:sess:${s.id}`).catch(() => undefined);
            if (text === undefined) continue; // Redis hiccup: keep waiting (bounded)
            if (text === null) throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'the session ended');
            const fresh = JSON.parse(text) as Session;
            if (fresh.refreshToken !== spent || fresh.accessExpiresAt !== s.accessExpiresAt) return fresh;
          }
          return s;
        }
      }
      try {
        const t = await client.refresh(spent);
        // Refresh-token rotation: keep the new one when the IdP issues it.
        const next: Session = {
          ...s,
          accessToken: t.accessToken ?? s.accessToken,
          refreshToken: t.refreshToken ?? s.refreshToken,
          accessExpiresAt: t.accessExpiresAt,
          accessRefreshAt: t.accessRefreshAt,
        };
        if (services.redis) await sessions.write(next); // visible to the other instances before unlocking
        const now = Date.now();
        for (const [id, r] of refreshed) if (r.until <= now) refreshed.delete(id);
        const until = Math.min(REFRESH_REUSE_MAX_MS, Math.max(REFRESH_REUSE_MIN_MS, (t.accessExpiresAt ?? 0) * 1000 - now));
        refreshed.set(s.id, { spent, session: next, until: now + until });
        return next;
      } finally {
        if (services.redis) await services.redis.eval(RELEASE_LOCK, 1, lockKey, owner).catch(() => undefined);
      }
    })();
    refreshing.set(s.id, run);
    try {
      return await run;
    } finally {
      refreshing.delete(s.id);
    }
  }

  async function readSession(raw: readonly string[]): Promise<Session | undefined> {
    const cookie = parseCookies(raw).get(cookieName);
    if (cookie === undefined) return undefined;
    const s = await sessions.read(cookie);
    if (!s) return undefined;
    const now = Date.now();
    if (now >= s.expiresAt || now - s.lastSeen >= sessionCfg!.idle_timeout) return undefined;
    return s;
  }

  /** The session's identity for provider `name` (refreshing its access token when due), or undefined. */
  async function authenticateSession(name: string, client: OidcClient, req: AuthRequest): Promise<Identity | undefined> {
    let s = await readSession(req.rawHeaders);
    if (!s || s.provider !== name) return undefined; // no session for this provider: not mine
    const now = Date.now();
    let changed = false;
    const refreshAt = s.accessRefreshAt ?? (s.accessExpiresAt === undefined ? undefined : s.accessExpiresAt - REFRESH_EARLY_S);
    if (s.refreshToken && refreshAt !== undefined && refreshAt <= now / 1000) {
      try {
        s = await refresh(s, client);
        changed = true;
      } catch (err) {
        if (err instanceof GatewayError && err.status === 503) throw err;
        return undefined; // the IdP refused the refresh: the login is over
      }
    }
    if (now - s.lastSeen >= touchEveryMs) {
      const recent = changed ? undefined : touched.get(s.id);
      if (recent !== undefined && now - recent.session.lastSeen < touchEveryMs) {
        // Requests still carrying the cookie from before this session's last touch (in flight, or a client
        // that kept it) get the cookie that touch sealed, instead of one sealed (and stored) each.
        if (req.ctx) pending.set(req.ctx, [hostCookie(cookieName, recent.cookie, (recent.session.expiresAt - now) / 1000)]);
        return toIdentity(recent.session, client);
      }
      s = { ...s, lastSeen: now };
      changed = true;
    }
    if (changed && req.ctx) {
      const cookie = await sessions.write(s);
      pending.set(req.ctx, [hostCookie(cookieName, cookie, (s.expiresAt - now) / 1000)]);
      if (touched.size >= TOUCHED_ENTRIES) touched.delete(touched.keys().next().value as string);
      touched.set(s.id, { session: s, cookie });
    }
    return toIdentity(s, client);
  }

  const authenticators = new Map<string, Authenticator>();
  for (const [name] of providers) {
    const client = clients.get(name) as OidcClient;
    authenticators.set(name, {
      name,
      type: 'oidc',
      challenge: `Bearer realm="${REALM}"`,
      consumes: [],
      authenticate(req: AuthRequest) {
        // No session cookie: "not mine", synchronously, so the route's next provider (a bearer token) is tried.
        if (!parseCookies(req.rawHeaders).has(cookieName)) return undefined;
        return authenticateSession(name, client, req);
      },
    });
  }

  function json(res: ServerResponse, status: number, body: unknown, security: readonly string[], cookies: readonly string[] = []): void {
    const text = JSON.stringify(body);
    const headers: string[] = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(text)), 'cache-control', 'no-store', ...security];
    for (const c of cookies) headers.push('set-cookie', c);
    res.writeHead(status, headers);
    res.end(text);
  }

  function redirect(res: ServerResponse, location: string, cookies: readonly string[], security: readonly string[]): void {
    const headers: string[] = ['location', location, 'cache-control', 'no-store', 'content-length', '0', ...security];
    for (const c of cookies) headers.push('set-cookie', c);
    res.writeHead(302, headers);
    res.end();
  }

  async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > limit) throw new GatewayError('GW_ERR_BAD_REQUEST', 'body too large');
      chunks.push(c as Buffer);
    }
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  }

  return {
    cookieName,
    authenticators,
    startLogin: (ctx, provider, opts) => startLogin(lc, ctx, provider, { ...opts, returnTo: ctx.target.path + ctx.target.query }),
    accessToken: (identity) => tokensOf.get(identity),
    pendingCookies: (ctx) => pending.get(ctx),
    async revokeSessions(subject, beforeMs, remote) {
      if (remote && sessions.kind === 'redis') return 0;
      let n = 0;
      for (const [name] of providers) n += await sessions.revoke(name, { sub: subject, before: beforeMs });
      return n;
    },
    serve(ctx, req, res, security) {
      const path = ctx.target.path;
      if (path === '/.zt/callback' && ctx.method === 'GET') {
        return finishLogin(lc, ctx, req).then((r) => redirect(res, r.location, r.cookies, security));
      }
      if (path === '/.zt/logout' && (ctx.method === 'GET' || ctx.method === 'POST')) {
        return (async () => {
          const s = await readSession(req.rawHeaders);
          const cookies = [clearCookie(cookieName)];
          if (!s) return redirect(res, '/', cookies, security);
          await sessions.destroy(s);
          const client = clients.get(s.provider);
          const end = client
            ? await client
                .endSessionUrl({ client_id: client.cfg.client_id, ...(s.idToken ? { id_token_hint: s.idToken } : {}) })
                .catch(() => undefined)
            : undefined;
          redirect(res, end?.href ?? '/', cookies, security);
        })();
      }
      if (path === '/.zt/backchannel-logout' && ctx.method === 'POST') {
        return (async () => {
          try {
            const token = (await readForm(req)).get('logout_token');
            if (!token) throw new Error('missing logout_token');
            const target = await logoutTokens.verify(token);
            await sessions.revoke(target.provider, target);
            json(res, 200, {}, security);
          } catch (err) {
            if (err instanceof GatewayError && err.status === 503) throw err;
            json(res, 400, { error: 'invalid_request', error_description: (err as Error).message }, security);
          }
        })();
      }
      if (path === '/.zt/userinfo' && ctx.method === 'GET') {
        return readSession(req.rawHeaders).then((s) => {
          const client = s ? clients.get(s.provider) : undefined;
          if (!s || !client) return json(res, 401, { error: 'unauthenticated' }, security);
          const { claims: _claims, ...identity } = identityToJson(toIdentity(s, client));
          json(res, 200, identity, security);
        });
      }
      if (path === '/.zt/session' && ctx.method === 'GET') {
        return readSession(req.rawHeaders).then((s) =>
          json(
            res,
            200,
            s
              ? { authenticated: true, provider: s.provider, subject: s.sub, expires_at: new Date(s.expiresAt).toISOString(), idle_expires_at: new Date(s.lastSeen + sessionCfg.idle_timeout).toISOString() }
              : { authenticated: false },
            security,
          ),
        );
      }
      if (path === '/.zt/login' && ctx.method === 'GET') {
        const params = new URLSearchParams(ctx.target.query.slice(1));
        const provider = params.get('provider') ?? providers[0]?.[0];
        if (!provider || !clients.has(provider)) return Promise.reject(new GatewayError('GW_ERR_NO_ROUTE'));
        return startLogin(lc, ctx, provider, { returnTo: params.get('return_to') ?? '/', reason: 'login' }).then((r) =>
          redirect(res, r.location, r.cookies, security),
        );
      }
      return false;
    },
  };
}
