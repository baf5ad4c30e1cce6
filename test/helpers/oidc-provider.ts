// A real OpenID Provider for tests: panva's oidc-provider, in-process on http://127.0.0.1:<port 0>, with
// test accounts (one with MFA), refresh tokens (rotated on every use), a settable access-token TTL,
// back-channel logout to the gateway over HTTPS (verified against the test CA), a minimal interaction
// handler that a test drives over HTTP, and its signing key exposed to mint hostile logout tokens.
// Also: a small browser-like cookie jar and an HTTPS client for the gateway (CA trusted explicitly).
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Agent, fetch as undiciFetch, request, type Dispatcher } from 'undici';
import { decodeJwt, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
// oidc-provider ships no type declarations; tests are not type-checked by `tsc -p .`.
import Provider from 'oidc-provider';
import { startGateway, type TestGateway } from './gateway.ts';

export interface TestAccount {
  password: string;
  email: string;
  name: string;
  groups: string[];
  /** 'always': every login is MFA; 'otp': MFA only when an otp is submitted; 'never'. */
  mfa: 'always' | 'otp' | 'never';
  /** A custom claim (profile scope), for `claims:` policy rules. */
  department?: string;
}

export const ACCOUNTS: Record<string, TestAccount> = {
  alice: { password: 'alice-pw', email: 'alice@corp.example', name: 'Alice', groups: ['eng', 'admins'], mfa: 'always' },
  bob: { password: 'bob-pw', email: 'bob@corp.example', name: 'Bob', groups: ['sales'], mfa: 'never', department: 'sales' },
  carol: { password: 'carol-pw', email: 'carol@corp.example', name: 'Carol', groups: ['eng'], mfa: 'otp' },
  mallory: { password: 'mallory-pw', email: 'mallory@evil.example', name: 'Mallory', groups: [], mfa: 'never', department: 'contractors' },
};

export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export interface ClientSpec {
  client_id: string;
  /** Absent: the client authenticates with private_key_jwt, its public keys in `jwks`. */
  client_secret?: string;
  jwks?: { keys: JWK[] };
  /** The gateway's https origin, e.g. https://localhost:1234: callback, back-channel and post-logout URIs. */
  origin: string;
  /** More origins whose /.zt/callback (and post-logout URI) are registered: app hosts behind a forward-auth proxy. */
  origins?: readonly string[];
}

export interface TestOP {
  readonly issuer: string;
  readonly port: number;
  readonly provider: any;
  /** Seconds; read at every token issuance. */
  accessTokenTtl: number;
  /** Token-endpoint requests by grant_type (counted after the provider parsed them, success or error). */
  readonly tokenRequests: Array<{ grantType: string | undefined; clientId: string | undefined; status: number }>;
  /** Requests received, by path (e.g. discovery and JWKS fetches). */
  readonly served: Map<string, number>;
  /** Back-channel logout deliveries the provider attempted, with their outcome. */
  readonly backchannel: Array<{ clientId: string; sid: string | undefined; ok: boolean; error?: string }>;
  /**
   * Man in the middle of the next token response: rewrites its ID token's claims and re-signs it with the
   * provider's own key (an ID token "for another client", with another nonce, ...). Cleared once used.
   */
  tamperNextIdToken: ((claims: JWTPayload) => JWTPayload) | undefined;
  /** Registers a confidential web client for a gateway origin (can be called at any time). */
  addClient(spec: ClientSpec): Promise<void>;
  /** Signs a JWT with the provider's signing key (RS256, its kid): hostile logout tokens, etc. */
  sign(payload: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  /** A valid logout token for `clientId` (override or delete claims with `patch`; undefined deletes). */
  logoutToken(clientId: string, claims: { sub?: string; sid?: string }, patch?: Record<string, unknown>): Promise<string>;
  /** Asks the provider itself to deliver a back-channel logout for (sub, sid) to the client. */
  backchannelLogout(clientId: string, sub: string, sid: string | undefined): Promise<void>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/**
 * Starts the provider. `gatewayCa` is the PEM CA the provider trusts when it POSTs back-channel logout
 * tokens to https://localhost:<port> (connections always go to 127.0.0.1).
 */
export async function startOidcProvider(opts: { gatewayCa: string; accessTokenTtl?: number }): Promise<TestOP> {
  const server = http.createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `op-${randomBytes(4).toString('hex')}`;
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };

  // Back-channel logout deliveries: HTTPS to the gateway, its CA trusted explicitly, always 127.0.0.1.
  const toGateway = new Agent({
    connect: {
      ca: opts.gatewayCa,
      rejectUnauthorized: true,
      lookup: (_host: string, o: { all?: boolean }, cb: (...a: unknown[]) => void) =>
        o?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
    } as object,
  });

  const state = {
    accessTokenTtl: opts.accessTokenTtl ?? 600,
  };

  const provider = new Provider(issuer, {
    jwks: { keys: [privateJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    acrValues: ['pwd', 'mfa'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups', 'department'],
      acr: null,
      amr: null,
      sid: null,
      auth_time: null,
      iss: null,
    },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: any, form: string) => {
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><html><body>${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button></body></html>`;
        },
        postLogoutSuccessSource: async (ctx: any) => {
          ctx.type = 'html';
          ctx.body = '<!DOCTYPE html><html><body>Signed out</body></html>';
        },
      },
      revocation: { enabled: true },
      claimsParameter: { enabled: true },
    },
    pkce: { required: () => true },
    ttl: {
      AccessToken: () => state.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    // Refresh tokens for any client allowed the grant (no offline_access/consent dance), rotated on every use.
    issueRefreshToken: async (_ctx: unknown, client: any) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // First-party clients: the grant covers what they ask for (no consent screen).
    loadExistingGrant: async (ctx: any) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email profile offline_access');
      grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
      await grant.save();
      return grant;
    },
    findAccount: async (_ctx: unknown, id: string) => {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, email: account.email, email_verified: true, name: account.name, groups: account.groups, department: account.department }),
      };
    },
    fetch: (url: string | URL, options: Record<string, unknown>) =>
      undiciFetch(url, { ...options, dispatcher: toGateway } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>,
    renderError: async (ctx: any, out: Record<string, unknown>) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (_ctx: unknown, err: Error) => {
    // Visible in the test output: a provider bug is not a gateway refusal.
    console.error('oidc-provider server_error', err);
  });

  const op: TestOP = {
    issuer,
    port,
    provider,
    get accessTokenTtl() {
      return state.accessTokenTtl;
    },
    set accessTokenTtl(v: number) {
      state.accessTokenTtl = v;
    },
    tokenRequests: [],
    served: new Map(),
    backchannel: [],
    tamperNextIdToken: undefined,
    async addClient(spec) {
      await provider.Client.adapter.upsert(spec.client_id, {
        client_id: spec.client_id,
        ...(spec.client_secret !== undefined ? { client_secret: spec.client_secret } : {}),
        application_type: 'web',
        redirect_uris: [spec.origin, ...(spec.origins ?? [])].map((o) => `${o}/.zt/callback`),
        post_logout_redirect_uris: [spec.origin, ...(spec.origins ?? [])].map((o) => `${o}/`),
        backchannel_logout_uri: `${spec.origin}/.zt/backchannel-logout`,
        backchannel_logout_session_required: true,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        ...(spec.jwks
          ? { jwks: spec.jwks, token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256' }
          : { token_endpoint_auth_method: 'client_secret_basic' }),
      });
    },
    async sign(payload, header = {}) {
      const key = await importJWK(privateJwk, 'RS256');
      return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, ...header }).sign(key);
    },
    async logoutToken(clientId, claims, patch = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: issuer,
        aud: clientId,
        iat: now,
        exp: now + 120,
        jti: randomBytes(12).toString('base64url'),
        events: { [BACKCHANNEL_EVENT]: {} },
        ...(claims.sub !== undefined ? { sub: claims.sub } : {}),
        ...(claims.sid !== undefined ? { sid: claims.sid } : {}),
      };
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) delete payload[k];
        else payload[k] = v;
      }
      return op.sign(payload as JWTPayload, { typ: 'logout+jwt' });
    },
    async backchannelLogout(clientId, sub, sid) {
      const client = await provider.Client.find(clientId);
      if (!client) throw new Error(`no client ${clientId}`);
      await client.backchannelLogout(sub, sid);
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
        void toGateway.close();
      }),
  };

  provider.on('backchannel.success', (_ctx: unknown, client: any, _sub: string, sid: string) => op.backchannel.push({ clientId: client.clientId, sid, ok: true }));
  provider.on('backchannel.error', (_ctx: unknown, err: Error, client: any, _sub: string, sid: string) =>
    op.backchannel.push({ clientId: client.clientId, sid, ok: false, error: err.message }),
  );

  // Count token-endpoint requests once the provider has parsed them (whatever the outcome).
  provider.use(async (ctx: any, next: () => Promise<void>) => {
    await next();
    if (ctx.path === '/token' && ctx.method === 'POST') {
      op.tokenRequests.push({ grantType: ctx.oidc?.params?.grant_type, clientId: ctx.oidc?.client?.clientId, status: ctx.status });
    }
  });

  const callback = provider.callback();

  /** The minimal login UI: GET shows the prompt as JSON; POST …/login with login, password (and otp). */
  async function interaction(req: IncomingMessage, res: ServerResponse, submit: boolean): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, uid } = details;
    if (prompt.name !== 'login') {
      // Anything else (consent) is first-party: finish it without a screen.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
      return;
    }
    if (!submit) {
      sendJson(res, 200, { uid, prompt: prompt.name, reasons: prompt.reasons, params });
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    const id = form.get('login') ?? '';
    const account = ACCOUNTS[id];
    if (!account || form.get('password') !== account.password) {
      sendJson(res, 403, { error: 'wrong login or password' });
      return;
    }
    const mfa = account.mfa === 'always' || (account.mfa === 'otp' && form.get('otp') === '123456');
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: id, acr: mfa ? 'mfa' : 'pwd', amr: mfa ? ['pwd', 'otp'] : ['pwd'], remember: true } },
      { mergeWithLastSubmission: false },
    );
  }

  /** Rewrites the id_token of the token response that is being written (and fixes content-length). */
  function tamper(res: ServerResponse, change: (claims: JWTPayload) => JWTPayload): void {
    const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
    (res as unknown as { end: (...a: unknown[]) => unknown }).end = (chunk: unknown, ...rest: unknown[]) => {
      if (chunk === undefined || chunk === null || res.statusCode !== 200) return end(chunk, ...rest);
      const body = JSON.parse(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk)) as Record<string, unknown>;
      if (typeof body.id_token !== 'string') return end(chunk, ...rest);
      void op.sign(change(decodeJwt(body.id_token))).then((idToken) => {
        const text = JSON.stringify({ ...body, id_token: idToken });
        res.setHeader('content-length', Buffer.byteLength(text));
        end(text);
      });
      return res;
    };
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    op.served.set(path, (op.served.get(path) ?? 0) + 1);
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(path);
    if (m) {
      interaction(req, res, m[2] !== undefined && req.method === 'POST').catch((err: Error) => {
        if (!res.headersSent) sendJson(res, 400, { error: err.message });
        else res.destroy();
      });
      return;
    }
    if (path === '/token' && req.method === 'POST' && op.tamperNextIdToken) {
      const change = op.tamperNextIdToken;
      op.tamperNextIdToken = undefined;
      tamper(res, change);
    }
    callback(req, res);
  });

  return op;
}

// ---------------------------------------------------------------------------------------------------------
// A browser-ish HTTP client: a cookie jar (host + path scoped, Secure honoured, Max-Age<=0 deletes) and
// undici requests that never follow redirects.

export interface StoredCookie {
  name: string;
  value: string;
  host: string;
  path: string;
  secure: boolean;
  httpOnly: boolean;
  sameSite: string | undefined;
  /** The Set-Cookie line as received. */
  raw: string;
}

export class CookieJar {
  readonly cookies = new Map<string, StoredCookie>();

  /** Parses Set-Cookie lines received from `url`. */
  store(url: string | URL, setCookie: string | string[] | undefined): void {
    if (setCookie === undefined) return;
    const u = new URL(url);
    for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair, ...attrs] = line.split(';');
      const eq = (pair as string).indexOf('=');
      if (eq <= 0) continue;
      const name = (pair as string).slice(0, eq).trim();
      const value = (pair as string).slice(eq + 1).trim();
      let path = '/';
      let secure = false;
      let httpOnly = false;
      let sameSite: string | undefined;
      let maxAge: number | undefined;
      let domain: string | undefined;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=').map((s) => s.trim()) as [string, string?];
        const key = k.toLowerCase();
        if (key === 'path') path = v || '/';
        else if (key === 'secure') secure = true;
        else if (key === 'httponly') httpOnly = true;
        else if (key === 'samesite') sameSite = v;
        else if (key === 'max-age') maxAge = Number(v);
        else if (key === 'domain') domain = v;
        else if (key === 'expires' && Date.parse(v) < Date.now()) maxAge = 0;
      }
      // __Host- cookies: Secure, Path=/, no Domain, from a secure origin; otherwise a browser drops them.
      if (name.startsWith('__Host-') && (!secure || path !== '/' || domain !== undefined || u.protocol !== 'https:')) continue;
      const key = `${u.hostname}|${path}|${name}`;
      if (maxAge !== undefined && maxAge <= 0) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, host: u.hostname, path, secure, httpOnly, sameSite, raw: line });
    }
  }

  /** Sets a cookie directly (an attacker planting one). */
  set(url: string | URL, name: string, value: string): void {
    const u = new URL(url);
    this.cookies.set(`${u.hostname}|/|${name}`, { name, value, host: u.hostname, path: '/', secure: true, httpOnly: true, sameSite: 'Lax', raw: `${name}=${value}` });
  }

  get(url: string | URL, name: string): string | undefined {
    const u = new URL(url);
    for (const c of this.cookies.values()) if (c.host === u.hostname && c.name === name) return c.value;
    return undefined;
  }

  delete(url: string | URL, name: string): void {
    const u = new URL(url);
    for (const [k, c] of this.cookies) if (c.host === u.hostname && c.name === name) this.cookies.delete(k);
  }

  names(url: string | URL): string[] {
    const u = new URL(url);
    return [...this.cookies.values()].filter((c) => c.host === u.hostname).map((c) => c.name);
  }

  /** The Cookie header a browser would send to `url`, or undefined. */
  header(url: string | URL): string | undefined {
    const u = new URL(url);
    const out: string[] = [];
    for (const c of this.cookies.values()) {
      if (c.host !== u.hostname) continue;
      if (c.secure && u.protocol !== 'https:') continue;
      if (!(u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))) continue;
      out.push(`${c.name}=${c.value}`);
    }
    return out.length ? out.join('; ') : undefined;
  }
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  location: string | undefined;
  setCookie: string[];
  text: string;
  json: any;
}

function asList(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** One request, no redirect following; cookies from `jar` are sent and stored. */
export async function send(
  url: string | URL,
  opts: {
    jar?: CookieJar;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    dispatcher?: Dispatcher;
    /** Replaces the jar's Cookie header (a replayed or forged cookie). */
    cookie?: string;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const cookie = opts.cookie ?? opts.jar?.header(url);
  if (cookie !== undefined) headers.cookie = cookie;
  const res = await request(url, {
    method: (opts.method ?? 'GET') as Dispatcher.HttpMethod,
    headers,
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.body.text();
  const setCookie = asList(res.headers['set-cookie']);
  opts.jar?.store(url, setCookie);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const location = res.headers.location as string | undefined;
  return { status: res.statusCode, headers: res.headers, location, setCookie, text, json };
}

/** An undici Agent for https://localhost:<port> that trusts only `ca` and always connects to 127.0.0.1. */
export function gatewayAgent(ca: string): Agent {
  return new Agent({
    connect: {
      ca,
      servername: 'localhost',
      rejectUnauthorized: true,
      lookup: (_host: string, o: { all?: boolean }, cb: (...a: unknown[]) => void) =>
        o?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
    } as object,
  });
}

/**
 * Drives the provider from an authorization URL to the redirect back to the gateway: follows the provider's
 * redirects, and answers the login prompt with `account` (and `otp` when given). Returns the callback URL
 * (not yet requested). A provider session in `jar` skips the prompt (SSO) unless the request forces one.
 */
export async function loginAtProvider(
  op: TestOP,
  authorizeUrl: string,
  jar: CookieJar,
  login: { account: string; password?: string; otp?: string } | undefined,
): Promise<{ callback: string; prompted: boolean; promptParams: Record<string, unknown> | undefined }> {
  let url = authorizeUrl;
  let prompted = false;
  let promptParams: Record<string, unknown> | undefined;
  for (let step = 0; step < 12; step++) {
    if (!url.startsWith(op.issuer)) return { callback: url, prompted, promptParams };
    const r = await send(url, { jar });
    if (r.status >= 300 && r.status < 400 && r.location) {
      url = new URL(r.location, url).href;
      continue;
    }
    if (r.status === 200 && r.json?.prompt === 'login') {
      if (!login) throw new Error('the provider asks for a login and none was given');
      prompted = true;
      promptParams = r.json.params;
      const body = new URLSearchParams({ login: login.account, password: login.password ?? ACCOUNTS[login.account]?.password ?? '' });
      if (login.otp) body.set('otp', login.otp);
      const s = await send(`${url}/login`, { jar, method: 'POST', body: body.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      if (!(s.status >= 300 && s.status < 400 && s.location)) throw new Error(`login refused: ${s.status} ${s.text}`);
      url = new URL(s.location, url).href;
      continue;
    }
    throw new Error(`unexpected provider answer ${r.status} at ${url}: ${r.text.slice(0, 300)}`);
  }
  throw new Error('too many redirects at the provider');
}

/** RP-independent logout at the provider (the user signs out there): confirms the logout form. */
export async function logoutAtProvider(op: TestOP, jar: CookieJar, endSessionUrl = `${op.issuer}/session/end`): Promise<void> {
  const page = await send(endSessionUrl, { jar });
  if (page.status !== 200) throw new Error(`end_session answered ${page.status}: ${page.text.slice(0, 300)}`);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)?.[1];
  const action = /<form[^>]*action="([^"]+)"/.exec(page.text)?.[1];
  if (!xsrf || !action) throw new Error('no logout form at the provider');
  const r = await send(new URL(action, endSessionUrl).href, {
    jar,
    method: 'POST',
    body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  if (!(r.status >= 300 && r.status < 400)) throw new Error(`logout confirm answered ${r.status}: ${r.text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------------------
// A TLS gateway (certificate for localhost from a test CA) whose OIDC client is registered at the provider.

export interface OidcGateway {
  gw: TestGateway;
  origin: string;
  clientId: string;
  clientSecret: string;
  agent: Agent;
  /** GET/POST to the gateway with the agent (path relative to the origin). */
  send(path: string, opts?: Parameters<typeof send>[1]): Promise<Reply>;
  close(): Promise<void>;
}

export const SESSION_SECRET = 'test-session-secret-0123456789-abcdefghijklmnop';

export async function startOidcGateway(
  /** The test provider, or any other that registers a client the same way (the demo IdP in browser tests). */
  op: Pick<TestOP, 'issuer' | 'addClient'>,
  pki: { ca: string; cert: string; key: string },
  opts: {
    clientId: string;
    session?: string;
    state?: string;
    routes: string;
    providers?: string;
    extra?: string;
    files?: Record<string, string>;
    /** A second instance of an already registered client: its secret, and no registration (which would move its URIs). */
    sameClientAs?: OidcGateway;
    /** The gateway's clock (a testClock().now) for session idle/ttl and access-token expiry. */
    now?: () => number;
    /** Plain HTTP on loopback, behind a TLS proxy (forward-auth): the browser's origin is the proxy's. */
    plaintext?: boolean;
  },
): Promise<OidcGateway> {
  const secret = opts.sameClientAs?.clientSecret ?? `secret-of-${opts.clientId}-${randomBytes(8).toString('hex')}`;
  const yaml = `listen:
  address: 127.0.0.1:0
  ${opts.plaintext ? 'plaintext: true' : 'tls: { cert: gw.crt, key: gw.key }'}
shutdown: { drain_timeout: 1s }
log: { level: warn, access: false }
${opts.state ?? ''}
${opts.extra ?? ''}
identity_providers:
  corp: { type: oidc, issuer: "${op.issuer}", client_id: ${opts.clientId}, client_secret: "\${env:OIDC_SECRET}", timeout: 5s }
${opts.providers ?? ''}
session: { secret: "\${env:SESSION_SECRET}"${opts.session ? `, ${opts.session}` : ''} }
routes:
${opts.routes}
`;
  const gw = await startGateway(yaml, {
    files: { 'gw.crt': pki.cert, 'gw.key': pki.key, ...opts.files },
    env: { OIDC_SECRET: secret, SESSION_SECRET },
    ...(opts.now ? { now: opts.now } : {}),
  });
  const origin = `${opts.plaintext ? 'http' : 'https'}://localhost:${gw.port}`;
  if (!opts.sameClientAs) await op.addClient({ client_id: opts.clientId, client_secret: secret, origin });
  const agent = gatewayAgent(pki.ca);
  return {
    gw,
    origin,
    clientId: opts.clientId,
    clientSecret: secret,
    agent,
    send: (path, o = {}) => send(`${origin}${path}`, { ...o, dispatcher: agent }),
    async close() {
      await gw.close();
      await agent.close();
    },
  };
}
