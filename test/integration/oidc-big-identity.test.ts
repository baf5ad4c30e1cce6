// Identities of any size without Redis, against a REAL OpenID Provider (oidc-provider) issuing a user with
// 300 groups: the session keeps only the claims the config reads, is split over `__Host-zt`, `.1` (`.2`),
// and the upstream gets the groups filtered by identity_headers.groups_filter (exact header values and
// assertion), while policy still sees every group. Hostile chunks are unauthenticated, never a crash; a
// session too large even for three cookies is a clear GW_ERR_SESSION_TOO_LARGE, with a log naming state.redis.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { createCA } from '../../tools/pki.ts';
import { createSealer } from '../../src/authn/oidc/sealed.ts';
import { joinSessionCookie } from '../../src/authn/oidc/session-cookies.ts';
import { startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';
import {
  ACCOUNTS,
  CookieJar,
  loginAtProvider,
  send,
  SESSION_SECRET,
  startOidcGateway,
  startOidcProvider,
  type OidcGateway,
  type Reply,
  type TestOP,
} from '../helpers/oidc-provider.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
const NAME = '__Host-zt';

/** 290 team groups and 10 ops groups, in an order that is not sorted. */
const TEAMS = Array.from({ length: 290 }, (_, i) => `team-${String(289 - i).padStart(3, '0')}`);
const OPS = Array.from({ length: 10 }, (_, i) => `ops-${9 - i}`);
const BIG_GROUPS = [...TEAMS.slice(0, 150), ...OPS, ...TEAMS.slice(150)];

let pki: { ca: string; cert: string; key: string };
let op: TestOP;
let upstream: Upstream;
let gw: OidcGateway;

const routes = (up: string) => `  - name: filtered
    match: { path: /filtered }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ groups: [team-289] }] }
    identity_headers:
      groups_filter: { include: [ops-, "/^team-0[0-4][0-9]$/"], max: 50 }
  - name: regex-i
    match: { path: /regex-i }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
    identity_headers:
      groups: X-Teams
      groups_filter: { include: ["/^TEAM-28[5-9]$/i"] }
  - name: denied
    match: { path: /denied }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize:
      deny: [{ groups: [team-200] }]
      allow: [{ authenticated: true }]
  - name: app
    match: { path: / }
    upstream: { url: ${up} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;

const extra = `identity_headers:
  groups_filter: { include: [ops-] }`;

function lastReceived(path: string): Received {
  const hits = upstream.received.filter((r) => r.url === path);
  const rec = hits[hits.length - 1];
  if (!rec) throw new Error(`the upstream never received ${path}`);
  return rec;
}

function header(rec: Received, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if ((rec.rawHeaders[i] as string).toLowerCase() === name) out.push(rec.rawHeaders[i + 1] as string);
  return out;
}

async function login(g: OidcGateway, jar: CookieJar, account: string): Promise<Reply> {
  const start = await g.send('/', { jar, headers: HTML });
  expect(start.status).toBe(302);
  const { callback } = await loginAtProvider(op, start.location as string, new CookieJar(), { account });
  return g.send(callback.slice(g.origin.length), { jar, headers: HTML });
}

/** The gateway's cookies in the jar, by name. */
function cookiesOf(jar: CookieJar, g: OidcGateway): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of jar.names(g.origin)) out.set(n, jar.get(g.origin, n) as string);
  return out;
}

beforeAll(async () => {
  ACCOUNTS.grace = { password: 'grace-pw', email: 'grace@corp.example', name: 'Grace', groups: BIG_GROUPS, mfa: 'never', department: 'research' };
  ACCOUNTS.heidi = {
    password: 'heidi-pw', email: 'heidi@corp.example', name: 'Heidi', mfa: 'never',
    groups: Array.from({ length: 900 }, (_, i) => `group-with-a-longer-name-${i}`), // under the 1000-group cap, over three cookies
  };
  const ca = await createCA('big identity CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  pki = { ca: ca.cert, ...leaf };
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  gw = await startOidcGateway(op, pki, { clientId: 'gw-big', routes: routes(upstream.url), extra, session: 'keep_claims: [name]' });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await op?.close();
  delete ACCOUNTS.grace;
  delete ACCOUNTS.heidi;
});

describe('a user with 300 groups, sealed sessions (no Redis)', () => {
  const jar = new CookieJar();
  let callback: Reply;

  beforeAll(async () => {
    callback = await login(gw, jar, 'grace');
  });

  it('logs in: the session is split over __Host-zt and __Host-zt.1, each Set-Cookie under 4 KB', async () => {
    expect(callback.status, callback.text).toBe(302);
    const session = callback.setCookie.filter((l) => l.startsWith(`${NAME}=`) || l.startsWith(`${NAME}.`));
    expect(session.map((l) => l.slice(0, l.indexOf('=')))).toEqual([NAME, `${NAME}.1`]);
    for (const l of session) {
      expect(Buffer.byteLength(l)).toBeLessThan(4096);
      expect(l).toMatch(/; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    }
    expect(jar.get(gw.origin, NAME)).toMatch(/^2~ey/);
  });

  it('the session keeps only the claims the config reads and session.keep_claims', async () => {
    const sealed = joinSessionCookie(cookiesOf(jar, gw), NAME) as string;
    const s = (await createSealer([SESSION_SECRET]).open(sealed, 'session')) as { claims: Record<string, unknown> };
    // department (a profile claim no rule reads) is gone; name is kept (keep_claims); groups in full.
    expect(Object.keys(s.claims).sort()).toEqual(['acr', 'amr', 'auth_time', 'email', 'email_verified', 'groups', 'name']);
    expect(s.claims).not.toHaveProperty('department');
    expect(s.claims.name).toBe('Grace');
    expect(s.claims.groups).toEqual(BIG_GROUPS);
  });

  it('reaches the upstream, which gets the filtered groups (sorted, cut at max 50) and Groups-Truncated; policy saw every group', async () => {
    const r = await gw.send('/filtered', { jar });
    expect(r.status, r.text).toBe(200);
    const rec = lastReceived('/filtered');
    const expected = [...OPS].sort().concat(Array.from({ length: 40 }, (_, i) => `team-${String(i).padStart(3, '0')}`));
    expect(header(rec, 'x-zt-groups')).toEqual([expected.join(',')]);
    expect(header(rec, 'x-zt-groups-truncated')).toEqual(['true']);
    // The allow rule reads team-289, which the upstream never sees.
    expect(expected).not.toContain('team-289');
    const assertion = decodeJwt(header(rec, 'x-zt-assertion')[0] as string);
    expect(assertion.groups).toEqual(expected);
    expect(assertion.groups_truncated).toBe(true);
    expect(assertion.sub).toBe('grace');
    // No gateway cookie reaches the app.
    expect(header(rec, 'cookie')).toEqual([]);
  });

  it('the global groups_filter applies where the route has none: no cut, no Groups-Truncated', async () => {
    const r = await gw.send('/page', { jar });
    expect(r.status).toBe(200);
    const rec = lastReceived('/page');
    expect(header(rec, 'x-zt-groups')).toEqual(['ops-0,ops-1,ops-2,ops-3,ops-4,ops-5,ops-6,ops-7,ops-8,ops-9']);
    expect(header(rec, 'x-zt-groups-truncated')).toEqual([]);
    const assertion = decodeJwt(header(rec, 'x-zt-assertion')[0] as string);
    expect(assertion.groups).toEqual([...OPS].sort());
    expect(assertion).not.toHaveProperty('groups_truncated');
  });

  it('a /regex/i include under a custom header name', async () => {
    const r = await gw.send('/regex-i', { jar });
    expect(r.status).toBe(200);
    const rec = lastReceived('/regex-i');
    expect(header(rec, 'x-teams')).toEqual(['team-285,team-286,team-287,team-288,team-289']);
    expect(header(rec, 'x-zt-groups')).toEqual([]);
  });

  it('a deny rule on a group the filters never pass on still denies', async () => {
    const before = upstream.received.length;
    const r = await gw.send('/denied', { jar });
    expect(r.status).toBe(403);
    expect(r.json.code).toBe('GW_ERR_FORBIDDEN');
    expect(upstream.received.length).toBe(before);
  });

  it('a client cannot send its own Groups-Truncated or chunk cookies upstream', async () => {
    const cookie = `${jar.header(gw.origin)}; app=1`;
    const r = await gw.send('/page', { cookie, headers: { 'x-zt-groups-truncated': 'false', 'X-ZT-Groups': 'admins' } });
    expect(r.status).toBe(200);
    const rec = lastReceived('/page');
    expect(header(rec, 'x-zt-groups-truncated')).toEqual([]);
    expect(header(rec, 'x-zt-groups')).toEqual(['ops-0,ops-1,ops-2,ops-3,ops-4,ops-5,ops-6,ops-7,ops-8,ops-9']);
    expect(header(rec, 'cookie')).toEqual(['app=1']);
  });

  describe('hostile chunks: unauthenticated (401, or a login redirect), never a crash, nothing forwarded', () => {
    const variants = (): Record<string, string> => {
      const c = cookiesOf(jar, gw);
      const first = c.get(NAME) as string;
      const second = c.get(`${NAME}.1`) as string;
      const flip = (v: string, i: number) => v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1);
      return {
        'tampered second chunk': `${NAME}=${first}; ${NAME}.1=${flip(second, 200)}`,
        'tampered first chunk': `${NAME}=${flip(first, 300)}; ${NAME}.1=${second}`,
        'missing second chunk': `${NAME}=${first}`,
        'chunks swapped': `${NAME}=2~${second.slice(0, 50)}; ${NAME}.1=${first.slice(2)}`,
        'count says three, two sent': `${NAME}=3~${first.slice(2)}; ${NAME}.1=${second}`,
        'second chunk only': `${NAME}.1=${second}`,
        'a huge chunk': `${NAME}=${first}; ${NAME}.1=${'A'.repeat(9000)}`,
      };
    };

    it('each variant', async () => {
      const before = upstream.received.length;
      for (const [what, cookie] of Object.entries(variants())) {
        const r = await gw.send('/page', { cookie, headers: { accept: 'application/json' } });
        expect(r.status, what).toBe(401);
        expect(r.json.code, what).toBe('GW_ERR_UNAUTHENTICATED');
      }
      expect(upstream.received.length).toBe(before);
      // The real session still works afterwards.
      expect((await gw.send('/page', { jar })).status).toBe(200);
    });

    it('chunks of two different sessions of the same user, mixed', async () => {
      const other = new CookieJar();
      expect((await login(gw, other, 'grace')).status).toBe(302);
      const a = cookiesOf(jar, gw);
      const b = cookiesOf(other, gw);
      const before = upstream.received.length;
      for (const cookie of [`${NAME}=${a.get(NAME)}; ${NAME}.1=${b.get(`${NAME}.1`)}`, `${NAME}=${b.get(NAME)}; ${NAME}.1=${a.get(`${NAME}.1`)}`]) {
        const r = await gw.send('/page', { cookie, headers: { accept: 'application/json' } });
        expect(r.status).toBe(401);
      }
      expect(upstream.received.length).toBe(before);
      expect((await gw.send('/page', { jar: other })).status).toBe(200);
    });
  });

  it('logout clears the session cookie and both chunks (and .2)', async () => {
    const j = new CookieJar();
    expect((await login(gw, j, 'grace')).status).toBe(302);
    const r = await gw.send('/.zt/logout', { jar: j, method: 'POST', headers: { 'sec-fetch-site': 'same-origin', origin: gw.origin } });
    expect(r.status).toBe(302);
    const cleared = r.setCookie.filter((l) => /Max-Age=0$/.test(l)).map((l) => l.slice(0, l.indexOf('=')));
    expect(cleared).toEqual([NAME, `${NAME}.1`, `${NAME}.2`]);
    expect(j.names(gw.origin).filter((n) => n.startsWith(NAME) && !n.includes('-tx-'))).toEqual([]);
  });
});

describe('a session too large even for three cookies', () => {
  it('is a clear 502 GW_ERR_SESSION_TOO_LARGE (never 500 INTERNAL), no session cookie, and a log line naming state.redis', async () => {
    const jar = new CookieJar();
    const r = await login(gw, jar, 'heidi');
    expect(r.status, r.text).toBe(502);
    // The callback is a browser navigation: the user gets a page for people, saying what went wrong.
    expect(String(r.headers['content-type'])).toMatch(/^text\/html/);
    expect(r.text).toContain('too large');
    const id = r.headers['x-request-id'] as string;
    expect(r.text).toContain(id);
    expect(gw.gw.logs.find((l) => l.msg === 'decision' && l.request_id === id)?.code).toBe('GW_ERR_SESSION_TOO_LARGE');
    expect(r.text).not.toContain('redis'); // the remedy is the operator's, not the user's
    expect(r.setCookie.filter((l) => l.startsWith(`${NAME}=`) || l.startsWith(`${NAME}.`))).toEqual([]);
    const line = gw.gw.logs.find((l) => l.code === 'GW_ERR_SESSION_TOO_LARGE');
    expect(line, JSON.stringify(gw.gw.logs.slice(-3))).toBeDefined();
    expect(JSON.stringify(line)).toContain('configure state.redis');
    expect(JSON.stringify(line)).toContain('(900 groups)');
  });
});

describe('reload', () => {
  it('a reload that starts reading a claim existing sessions lack logs a warning naming it', async () => {
    const yaml = (await import('node:fs')).readFileSync(gw.gw.configFile, 'utf8');
    const next = yaml.replace('    authorize: { allow: [{ groups: [team-289] }] }', '    authorize: { allow: [{ groups: [team-289], claims: { department: research } }] }');
    expect(next).not.toBe(yaml);
    writeFileSync(gw.gw.configFile, next);
    expect(await gw.gw.gateway.reload()).toBe(true);
    const warn = gw.gw.logs.find((l) => l.event === 'session_claims_missing');
    expect(warn?.level).toBe('warn');
    expect(warn?.claims).toEqual(['department']);
    expect(String(warn?.message)).toContain('department');
    // An unchanged reload warns no more.
    const count = gw.gw.logs.filter((l) => l.event === 'session_claims_missing').length;
    expect(await gw.gw.gateway.reload()).toBe(true);
    expect(gw.gw.logs.filter((l) => l.event === 'session_claims_missing').length).toBe(count);
    // A new login keeps department: the rule now admits grace.
    const jar = new CookieJar();
    expect((await login(gw, jar, 'grace')).status).toBe(302);
    expect((await gw.send('/filtered', { jar })).status).toBe(200);
  });
});
