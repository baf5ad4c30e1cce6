// A local stand-in for GitHub's OAuth and REST endpoints, as GitHub Enterprise Server lays them out under one
// base URL (`/login/oauth/authorize`, `/login/oauth/access_token`, `/api/v3/...`), with GitHub's documented
// request and response shapes: the token endpoint answers errors with 200 and `{ error }`; lists are paged
// with `per_page` and a `Link: <…>; rel="next"` header; `/user/emails` lists { email, primary, verified,
// visibility }. The authorize step approves at once as `approveAs`. Every request is recorded.
import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GhUser {
  id: number | string;
  login: string;
  name?: string;
  /** The public profile email (unverified: never to be used as the user's address). */
  email?: string;
  emails: Array<{ email: string; primary: boolean; verified: boolean; visibility?: string | null }>;
  orgs: string[];
  /** [org login, team slug] */
  teams: Array<[string, string]>;
}

export interface GhCall {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  accept: string | undefined;
  body: URLSearchParams | undefined;
}

export interface GithubStandIn {
  readonly url: string;
  readonly calls: GhCall[];
  users: Map<string, GhUser>;
  /** The login the next authorize approves. */
  approveAs: string;
  /** Items per page of the list endpoints (GitHub's max is 100). */
  pageSize: number;
  /** A Link header to answer on /user/orgs instead of the real next page (hostile pagination). */
  linkOverride: string | undefined;
  /** When set, every API request is answered with this status (GitHub down). */
  failWith: number | undefined;
  /** Tokens issued, by user login; revoke() makes them answer 401. */
  tokens: Map<string, string>;
  revoke(login: string): void;
  close(): Promise<void>;
}

const CLIENT_ID = 'Iv1.gh-client';
export const GH_CLIENT = { id: CLIENT_ID, secret: 'gh-client-secret-0123456789abcdef0123' };

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

export async function startGithub(): Promise<GithubStandIn> {
  const codes = new Map<string, { login: string; redirectUri: string; challenge: string | null; used: boolean }>();
  const byToken = new Map<string, string>();
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const gh: GithubStandIn = {
    url,
    calls: [],
    users: new Map(),
    approveAs: '',
    pageSize: 100,
    linkOverride: undefined,
    failWith: undefined,
    tokens: new Map(),
    revoke(login) {
      const t = gh.tokens.get(login);
      if (t !== undefined) byToken.delete(t);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };

  function page<T>(req: IncomingMessage, res: ServerResponse, path: string, items: T[], override?: string): void {
    const q = new URL(req.url ?? '/', url).searchParams;
    const per = Math.min(Number(q.get('per_page') ?? 30), gh.pageSize);
    const n = Math.max(1, Number(q.get('page') ?? 1));
    const slice = items.slice((n - 1) * per, n * per);
    const headers: Record<string, string> = {};
    if (override !== undefined) headers.link = override;
    else if (n * per < items.length) headers.link = `<${url}${path}?per_page=${per}&page=${n + 1}>; rel="next", <${url}${path}?per_page=${per}&page=${Math.ceil(items.length / per)}>; rel="last"`;
    send(res, 200, slice, headers);
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', url);
      const body = req.method === 'POST' ? new URLSearchParams(Buffer.concat(chunks).toString('utf8')) : undefined;
      gh.calls.push({ method: req.method ?? '', path: u.pathname, query: u.searchParams, authorization: req.headers.authorization, accept: req.headers.accept, body });

      if (u.pathname === '/login/oauth/authorize' && req.method === 'GET') {
        const q = u.searchParams;
        if (q.get('client_id') !== CLIENT_ID) return send(res, 404, { error: 'unknown client' });
        const code = randomBytes(10).toString('hex');
        const redirectUri = q.get('redirect_uri') ?? '';
        codes.set(code, { login: gh.approveAs, redirectUri, challenge: q.get('code_challenge'), used: false });
        const to = new URL(redirectUri);
        to.searchParams.set('code', code);
        to.searchParams.set('state', q.get('state') ?? '');
        res.writeHead(302, { location: to.href }).end();
        return;
      }
      if (u.pathname === '/login/oauth/access_token' && req.method === 'POST' && body) {
        const c = codes.get(body.get('code') ?? '');
        const verifier = body.get('code_verifier') ?? '';
        const ok =
          c !== undefined && !c.used && body.get('client_id') === CLIENT_ID && body.get('client_secret') === GH_CLIENT.secret &&
          body.get('redirect_uri') === c.redirectUri &&
          (c.challenge === null || createHash('sha256').update(verifier).digest('base64url') === c.challenge);
        // GitHub: 200 with an error member for a bad code.
        if (!ok || c === undefined) return send(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
        c.used = true;
        const token = `gho_${randomBytes(18).toString('base64url')}`;
        byToken.set(token, c.login);
        gh.tokens.set(c.login, token);
        if (req.headers.accept?.includes('application/json')) return send(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:org,user:email' });
        res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' }).end(`access_token=${token}&scope=read%3Aorg%2Cuser%3Aemail&token_type=bearer`);
        return;
      }
      if (u.pathname.startsWith('/api/v3/') && gh.failWith !== undefined) return send(res, gh.failWith, { message: 'Server Error' });
      if (u.pathname.startsWith('/api/v3/') && req.method === 'GET') {
        const token = /^(?:Bearer|token) (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        const login = token === undefined ? undefined : byToken.get(token);
        const user = login === undefined ? undefined : gh.users.get(login);
        if (!user) return send(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
        const path = u.pathname.slice('/api/v3'.length);
        if (path === '/user') return send(res, 200, { login: user.login, id: user.id, type: 'User', name: user.name ?? null, email: user.email ?? null });
        if (path === '/user/emails') return send(res, 200, user.emails.map((e) => ({ visibility: null, ...e })));
        if (path === '/user/orgs') return page(req, res, u.pathname, user.orgs.map((o, i) => ({ login: o, id: 100 + i, url: `${url}/api/v3/orgs/${o}` })), gh.linkOverride);
        if (path === '/user/teams') {
          return page(req, res, u.pathname, user.teams.map(([org, slug], i) => ({ id: 200 + i, name: slug.toUpperCase(), slug, organization: { login: org, id: 1 } })));
        }
        return send(res, 404, { message: 'Not Found' });
      }
      send(res, 404, { message: 'Not Found' });
    });
  });
  return gh;
}
