// type: github — GitHub (or GitHub Enterprise Server) as the login of a relying party. GitHub is OAuth 2.0
// without OIDC: no ID token, so who logged in comes from its REST API with the user's token. The subject is
// the numeric user id (logins can be renamed and then reused by someone else); the email only a primary
// address GitHub says is verified (/user/emails); groups are the allowed organizations the user belongs
// to and their `org/team` slugs, lowercased. OAuth-app tokens never expire: the session's membership is
// checked again every membership_ttl (through the refresh path, with the same token), and a user who left
// every allowed organization (or whose token was revoked) is logged out.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import type { GithubProviderConfig, OidcProviderConfig } from '../../config/index.ts';
import { GatewayError } from '../../core/index.ts';
import { compileClaimMapping } from '../claim-mapping.ts';
import { MAX_GROUPS } from '../claim-mapping.ts';
import { endWith, outboundSpan } from '../outbound-span.ts';
import type { OidcClient, TokenResult } from './client.ts';
import { readCappedText } from './capped-answer.ts';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** Pages of 100 read per list (orgs, teams): more than MAX_GROUPS entries is refused anyway. */
const MAX_PAGES = 10;

type Json = Record<string, unknown>;

/** The GitHub endpoints: github.com's API is api.github.com, a GitHub Enterprise Server's is <url>/api/v3. */
export function githubEndpoints(url: string): { web: string; api: string } {
  const u = new URL(url);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) throw new TypeError('url must be https:// (http:// only on loopback)');
  if (u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') throw new TypeError('url must be a plain base URL');
  const web = `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  return { web, api: web === 'https://github.com' ? 'https://api.github.com' : `${web}/api/v3` };
}

function unavailable(cause?: unknown): GatewayError {
  return new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'GitHub is unavailable', cause === undefined ? undefined : { cause });
}

function refused(detail: string): GatewayError {
  return new GatewayError('GW_ERR_FORBIDDEN', `login refused: ${detail}`);
}

/** The next page of a GitHub list (Link: <…>; rel="next"), only on the API's own origin. */
function nextPage(link: string | null, api: string): string | undefined {
  if (link === null) return undefined;
  for (const part of link.split(',')) {
    const m = /^\s*<([^>]+)>\s*;\s*rel="next"\s*$/.exec(part);
    if (!m) continue;
    try {
      const next = new URL(m[1] as string);
      return next.href.startsWith(`${api}/`) ? next.href : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const own = (o: unknown, k: string): unknown => (o !== null && typeof o === 'object' && !Array.isArray(o) && Object.hasOwn(o, k) ? (o as Json)[k] : undefined);

export function createGithubClient(name: string, cfg: GithubProviderConfig, baseDir: string, clock: () => number = Date.now): OidcClient {
  const { web, api } = githubEndpoints(cfg.url);
  const ca = cfg.ca ? readFileSync(resolve(baseDir, cfg.ca), 'utf8') : undefined;
  const agent = ca ? new Agent({ connect: { ca, rejectUnauthorized: true } }) : undefined;
  const allowed = new Set(cfg.allowed_organizations.map((o) => o.toLowerCase()));
  // What the rest of the relying party reads of a provider (issuer for the identity, client_id, timeout).
  const asOidc: OidcProviderConfig = {
    type: 'oidc',
    issuer: web,
    client_id: cfg.client_id,
    client_secret: cfg.client_secret,
    scopes: cfg.scopes,
    claims: cfg.claims,
    timeout: cfg.timeout,
    ...(cfg.ca !== undefined ? { ca: cfg.ca } : {}),
  };

  async function call(url: string, init: { method?: string; headers: Record<string, string>; body?: string }, what: string): Promise<Response> {
    try {
      return await endWith(
        outboundSpan(url, init.method ?? 'GET', `github ${what}`),
        undiciFetch(url, {
          ...init,
          redirect: 'error',
          signal: AbortSignal.timeout(cfg.timeout),
          ...(agent ? { dispatcher: agent } : {}),
        }) as unknown as Promise<Response>,
      );
    } catch (err) {
      throw unavailable(err);
    }
  }

  async function json(res: Response): Promise<unknown> {
    try {
      return JSON.parse(await readCappedText(res));
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw unavailable(err);
    }
  }

  const apiHeaders = (token: string) => ({
    authorization: `Bearer ${token}`,
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
    'user-agent': 'zt-gateway',
  });

  /** One API document; 401 ends the login, 403/404 (scope not granted) is `undefined` where allowed. */
  async function get(path: string, token: string, optional = false): Promise<{ body: unknown; next: string | undefined } | undefined> {
    const url = path.startsWith(`${api}/`) ? path : `${api}${path}`;
    const res = await call(url, { headers: apiHeaders(token) }, path.split('?')[0]?.split('/').pop() ?? 'api');
    if (res.status === 401) {
      await res.body?.cancel().catch(() => undefined);
      throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'GitHub refused the token');
    }
    if (optional && (res.status === 403 || res.status === 404)) {
      await res.body?.cancel().catch(() => undefined);
      return undefined;
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw unavailable(new Error(`GitHub answered ${res.status} for ${path.split('?')[0]}`));
    }
    return { body: await json(res), next: nextPage(res.headers.get('link'), api) };
  }

  /** Every page of a list (at most MAX_PAGES of 100); more is refused. */
  async function list(path: string, token: string): Promise<unknown[]> {
    const out: unknown[] = [];
    let url: string | undefined = `${api}${path}${path.includes('?') ? '&' : '?'}per_page=100`;
    for (let page = 0; url !== undefined; page++) {
      if (page === MAX_PAGES) throw refused(`more than ${MAX_GROUPS} organizations or teams`);
      const got = await get(url, token);
      if (!got || !Array.isArray(got.body)) throw unavailable(new TypeError(`GitHub ${path} is not a list`));
      out.push(...got.body);
      if (out.length > MAX_GROUPS) throw refused(`more than ${MAX_GROUPS} organizations or teams`);
      url = got.next;
    }
    return out;
  }

  /** Who the token belongs to, their verified primary email and their groups in the allowed organizations. */
  async function claimsOf(token: string): Promise<Json> {
    const user = (await get('/user', token))?.body;
    const id = own(user, 'id');
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw unavailable(new TypeError('GitHub /user has no numeric id'));
    const login = own(user, 'login');
    const orgs = await list('/user/orgs', token);
    const teams = await list('/user/teams', token);
    const groups: string[] = [];
    for (const o of orgs) {
      const org = own(o, 'login');
      if (typeof org === 'string' && allowed.has(org.toLowerCase())) groups.push(org.toLowerCase());
    }
    if (groups.length === 0) throw refused('not a member of an allowed organization');
    for (const t of teams) {
      const org = own(own(t, 'organization'), 'login');
      const slug = own(t, 'slug');
      if (typeof org === 'string' && typeof slug === 'string' && allowed.has(org.toLowerCase()) && slug !== '') groups.push(`${org.toLowerCase()}/${slug.toLowerCase()}`);
    }
    const claims: Json = { sub: String(id), groups: [...new Set(groups)] };
    if (typeof login === 'string') claims.login = login;
    const displayName = own(user, 'name');
    if (typeof displayName === 'string') claims.name = displayName;
    // Only an address GitHub has verified, and only the primary one (the public profile email is unverified).
    const emails = (await get('/user/emails', token, true))?.body;
    if (Array.isArray(emails)) {
      const primary = emails.find((e) => own(e, 'primary') === true && own(e, 'verified') === true && typeof own(e, 'email') === 'string');
      if (primary !== undefined) {
        claims.email = own(primary, 'email');
        claims.email_verified = true;
      }
    }
    return claims;
  }

  /** The token's result: the membership is checked again from `accessRefreshAt` on (membership_ttl). */
  async function result(token: string): Promise<TokenResult> {
    const claims = await claimsOf(token);
    const now = Math.floor(clock() / 1000);
    const ttlS = Math.max(1, Math.floor(cfg.membership_ttl / 1000));
    return {
      claims,
      idToken: undefined,
      accessToken: token,
      // No refresh token (OAuth-app tokens never expire): the token itself is what the re-check uses.
      refreshToken: token,
      accessExpiresAt: now + ttlS,
      accessRefreshAt: now + ttlS,
      claimsRechecked: true,
    };
  }

  return {
    name,
    cfg: asOidc,
    mapping: compileClaimMapping(cfg.claims),
    recheckMs: cfg.membership_ttl,
    dispatcher: agent,
    configuration: () => Promise.reject(new TypeError('GitHub has no OpenID configuration')),
    async authorizationUrl(p) {
      const u = new URL(`${web}/login/oauth/authorize`);
      u.searchParams.set('client_id', cfg.client_id);
      u.searchParams.set('redirect_uri', p.redirectUri);
      u.searchParams.set('scope', cfg.scopes.join(' '));
      u.searchParams.set('state', p.state);
      u.searchParams.set('code_challenge', p.challenge);
      u.searchParams.set('code_challenge_method', 'S256');
      u.searchParams.set('allow_signup', 'false');
      if (p.prompt === 'login' || p.prompt === 'select_account') u.searchParams.set('prompt', 'select_account');
      return u;
    },
    async exchange(callbackUrl, checks, redirectUri) {
      const q = callbackUrl.searchParams;
      if (q.get('state') !== checks.state) throw new TypeError('state mismatch');
      const code = q.get('code');
      if (!code) throw new TypeError('no authorization code');
      const res = await call(
        `${web}/login/oauth/access_token`,
        {
          method: 'POST',
          headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'zt-gateway' },
          body: new URLSearchParams({ client_id: cfg.client_id, client_secret: cfg.client_secret, code, redirect_uri: redirectUri, code_verifier: checks.verifier }).toString(),
        },
        'access_token',
      );
      if (res.status >= 500) {
        await res.body?.cancel().catch(() => undefined);
        throw unavailable();
      }
      // GitHub answers errors (bad_verification_code, …) with 200 and an `error` member.
      const body = await json(res);
      const token = own(body, 'access_token');
      if (res.status !== 200 || typeof token !== 'string' || token === '' || own(body, 'error') !== undefined) {
        throw new TypeError('GitHub refused the authorization code');
      }
      return result(token);
    },
    async refresh(token) {
      return result(token);
    },
    endSessionUrl: () => Promise.resolve(undefined),
    jwksUri: () => Promise.resolve(undefined),
  };
}
