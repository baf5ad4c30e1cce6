// The `session` authenticators of the oidc providers: the session cookie → its session (refreshing the
// access token when due, sliding the idle timeout) → an Identity. One per relying party (its cookies are
// sealed with today's secrets); the store and refresher it uses outlive reloads.
import { type RequestContext, GatewayError, type Identity } from '../../core/index.ts';
import { REALM, type AuthRequest, type Authenticator } from '../types.ts';
import type { OidcClient } from './client.ts';
import { parseCookies } from './cookies.ts';
import { joinSessionCookie, sessionCookies } from './session-cookies.ts';
import { refreshDueAt, type Refresher } from './refresh.ts';
import type { Session, SessionStore } from './sessions.ts';

const TOUCHED_ENTRIES = 10_000;

export interface SessionAuthOptions {
  store: SessionStore;
  refresher: Refresher;
  clients: ReadonlyMap<string, OidcClient>;
  cookieName: string;
  idleMs: number;
  /** The clock for idle/ttl checks and the access token's refresh time. */
  now: () => number;
  /** Identity → the session it was made from (kept across reloads, for live connections). */
  sessionOf: WeakMap<Identity, Session>;
}

/** The session's claims as the gateway's identity (the same object for the same cached session). */
function identityOf(s: Session, client: OidcClient): Identity {
  const c = s.claims;
  const m = client.mapping;
  const email = m.email(c);
  // Checked at login (more than MAX_GROUPS never makes a session): a session that has them anyway ends.
  const groups = m.groups(c);
  if (groups === null) throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'the session carries too many groups');
  return Object.freeze({
    subject: s.sub,
    provider: s.provider,
    issuer: client.cfg.issuer,
    method: 'session',
    email,
    emailVerified: email !== undefined && m.emailVerified(c),
    groups: Object.freeze(groups),
    claims: Object.freeze({ ...c }),
    spiffeId: undefined,
    authTime: typeof c.auth_time === 'number' ? c.auth_time : Math.floor(s.createdAt / 1000),
    amr: Object.freeze(Array.isArray(c.amr) ? c.amr.filter((a): a is string => typeof a === 'string') : []),
    acr: typeof c.acr === 'string' ? c.acr : undefined,
    expiresAt: Math.floor(s.expiresAt / 1000),
  });
}

export class SessionAuth {
  readonly #o: SessionAuthOptions;
  readonly #tokensOf = new WeakMap<Identity, string>();
  readonly #pending = new WeakMap<RequestContext, string[]>();
  /** A session read from the cache is the same object each time: so is its identity. */
  readonly #identities = new WeakMap<Session, Identity>();
  /** Session id → its latest touched copy and the cookie sealed for it (bounded, oldest dropped first). */
  readonly #touched = new Map<string, { session: Session; cookie: string }>();
  /** Sliding idle timeout: the session's lastSeen is rewritten (a new cookie) at most this often. */
  readonly touchEveryMs: number;
  readonly authenticators = new Map<string, Authenticator>();

  constructor(o: SessionAuthOptions) {
    this.#o = o;
    this.touchEveryMs = Math.max(1, Math.min(60_000, Math.floor(o.idleMs / 10)));
    for (const [name, client] of o.clients) {
      this.authenticators.set(name, {
        name,
        type: 'oidc',
        challenge: `Bearer realm="${REALM}"`,
        consumes: [],
        authenticate: (req: AuthRequest) => {
          // No session cookie: "not mine", synchronously, so the route's next provider (a bearer token) is tried.
          if (!parseCookies(req.rawHeaders).has(o.cookieName)) return undefined;
          return this.#authenticate(name, client, req);
        },
      });
    }
  }

  identity(s: Session, client: OidcClient): Identity {
    const known = this.#identities.get(s);
    if (known !== undefined) return known;
    const identity = identityOf(s, client);
    if (s.accessToken) this.#tokensOf.set(identity, s.accessToken);
    this.#identities.set(s, identity);
    this.#o.sessionOf.set(identity, s);
    return identity;
  }

  accessToken(identity: Identity): string | undefined {
    return this.#tokensOf.get(identity);
  }

  pendingCookies(ctx: RequestContext): readonly string[] | undefined {
    return this.#pending.get(ctx);
  }

  /** The live session of the request's cookie, or undefined (none, unknown, expired, idle too long). */
  async read(raw: readonly string[]): Promise<Session | undefined> {
    const cookie = joinSessionCookie(parseCookies(raw), this.#o.cookieName);
    if (cookie === undefined || cookie === '') return undefined;
    const s = await this.#o.store.read(cookie);
    if (!s) return undefined;
    const now = this.#o.now();
    if (now >= s.expiresAt || now - s.lastSeen >= this.#o.idleMs) return undefined;
    return s;
  }

  /** The session's identity for provider `name` (refreshing its access token when due), or undefined. */
  async #authenticate(name: string, client: OidcClient, req: AuthRequest): Promise<Identity | undefined> {
    let s = await this.read(req.rawHeaders);
    if (!s || s.provider !== name) return undefined; // no session for this provider: not mine
    const now = this.#o.now();
    // Claims that must be checked again (GitHub membership) but whose token the cookie could not keep: over.
    if (client.recheckMs !== undefined && !s.refreshToken && now - s.createdAt >= client.recheckMs) return undefined;
    let changed = false;
    const refreshAt = refreshDueAt(s);
    if (s.refreshToken && refreshAt !== undefined && refreshAt <= now / 1000) {
      try {
        s = await this.#o.refresher.refresh(s, client);
        changed = true;
      } catch (err) {
        if (err instanceof GatewayError && err.status === 503) throw err;
        return undefined; // the IdP refused the refresh: the login is over
      }
    }
    if (now - s.lastSeen >= this.touchEveryMs) {
      const recent = changed ? undefined : this.#touched.get(s.id);
      if (recent !== undefined && now - recent.session.lastSeen < this.touchEveryMs) {
        // Requests still carrying the cookie from before this session's last touch (in flight, or a client
        // that kept it) get the cookie that touch sealed, instead of one sealed (and stored) each.
        if (req.ctx) this.#pending.set(req.ctx, sessionCookies(this.#o.cookieName, recent.cookie, (recent.session.expiresAt - now) / 1000, parseCookies(req.rawHeaders)));
        return this.identity(recent.session, client);
      }
      s = { ...s, lastSeen: now };
      changed = true;
    }
    if (changed && req.ctx) await this.#remember(s, req.ctx, now, req.rawHeaders);
    return this.identity(s, client);
  }

  /** Stores the changed session and queues its new cookie for the request's answer. */
  async #remember(s: Session, ctx: RequestContext, now: number, raw: readonly string[]): Promise<void> {
    const cookie = await this.#o.store.write(s);
    this.#pending.set(ctx, sessionCookies(this.#o.cookieName, cookie, (s.expiresAt - now) / 1000, parseCookies(raw)));
    if (this.#touched.size >= TOUCHED_ENTRIES) this.#touched.delete(this.#touched.keys().next().value as string);
    this.#touched.set(s.id, { session: s, cookie });
  }
}
