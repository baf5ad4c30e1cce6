// Other spellings of a protected path (issue 17 items 2 and 5). With `/admin` for admins and a catch-all `/`
// for everyone signed in, IIS/ASP.NET, Windows file servers and case-insensitive Java routers read `/Admin`,
// `/admin.`, `/admin%20`, `/adm%C4%B1n` (dotless ı) and `/admin::$INDEX_ALLOCATION` as `/admin`; a backend
// that decodes before cutting `;params` reads `/admin%3Bx` as `/admin`. Each is refused 400 GW_ERR_BAD_PATH
// with nothing forwarded; an upstream without `case_insensitive` keeps today's case-sensitive paths.
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRefused, expectStillServing, get, raw, receivedOnce, type Answer } from '../helpers/attack.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const SECRET = randomBytes(32).toString('base64url');
const ISSUER = 'https://idp.spelling.test';

/** Two origins with the same routes: `win` folds paths (IIS), `unix` does not; `semi` opts in to %3B. */
function config(win: string, unix: string, semi: string): string {
  const routes = (host: string, upstream: string) => `
  - name: ${host}-admin
    match: { host: ${host}.test, path: /admin }
    upstream: ${upstream}
    authenticate: [corp]
    authorize: { allow: [{ groups: [admins] }] }
  - name: ${host}-app
    match: { host: ${host}.test, path: / }
    upstream: ${upstream}
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }`;
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_headers: { assertion: false }
identity_providers:
  corp: { type: jwt, issuer: ${ISSUER}, audiences: [gw], algorithms: [HS256], secret: "\${env:SECRET}" }
routes:${routes('win', `{ url: ${win}, timeout: 2s, case_insensitive: true }`)}${routes('unix', `{ url: ${unix}, timeout: 2s }`)}
  - name: semi
    match: { host: semi.test, path: / }
    upstream: { url: ${semi}, timeout: 2s, allow_encoded_semicolon: true }
    public: true
  - name: public
    match: { path: / }
    upstream: { url: ${unix}, timeout: 2s }
    public: true
`;
}

let win: Upstream;
let unix: Upstream;
let semi: Upstream;
let gw: TestGateway;
let user: string;
let admin: string;

function token(sub: string, groups: string[]): Promise<string> {
  return new SignJWT({ groups })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience('gw')
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));
}

beforeAll(async () => {
  [win, unix, semi] = await Promise.all([startUpstream(), startUpstream(), startUpstream()]);
  gw = await startGateway(config(win.url, unix.url, semi.url), { env: { SECRET } });
  [user, admin] = await Promise.all([token('erin', ['staff']), token('ada', ['admins'])]);
});
afterAll(async () => {
  await gw?.close();
  await Promise.all([win?.close(), unix?.close(), semi?.close()]);
});

function send(host: string, target: string, tok: string = user): () => Promise<Answer> {
  return () => raw(gw, target, { host, headers: [`Authorization: Bearer ${tok}`] });
}

async function forwardedTo(up: Upstream, host: string, target: string, tok: string = user): Promise<void> {
  const res = await send(host, target, tok)();
  expect(res.status, res.body).toBe(200);
  receivedOnce(up, target);
}

describe('NTFS stream syntax (:$) is refused on every route', () => {
  it.each([
    ['::$INDEX_ALLOCATION', '/admin::$INDEX_ALLOCATION/users'],
    [':$I30:$INDEX_ALLOCATION', '/admin:$I30:$INDEX_ALLOCATION/users'],
    ['::$DATA on a file', '/web.config::$DATA'],
    ['encoded %3A%3A%24DATA', '/web.config%3A%3A%24DATA'],
    ['encoded $ only', '/admin:%24i30:%24INDEX_ALLOCATION/users'],
    ['encoded : only', '/web.config%3A$DATA'],
    ['after ;params', '/admin;x::$DATA/users'],
  ])('%s: %s', async (_label, target) => {
    for (const host of ['win.test', 'unix.test', 'other.test']) {
      await expectRefused(gw, host === 'win.test' ? win : unix, send(host, target), 400, 'GW_ERR_BAD_PATH');
    }
  });

  it('a colon without $ is an ordinary character (`/a:b`, `/x:/y`)', async () => {
    await forwardedTo(unix, 'unix.test', '/time/12:30');
    await forwardedTo(win, 'win.test', '/urn:isbn:123/x');
  });
});

describe('upstream.case_insensitive: spellings that fold onto another route are refused, never re-routed', () => {
  it.each([
    ['upper-case first letter', '/Admin/users'],
    ['all upper-case', '/ADMIN/users'],
    ['mixed case, no trailing segment', '/aDmIn'],
    ['dotless ı (upper-cases to I)', '/adm%C4%B1n/users'],
    ['dotted İ (lower-cases to i)', '/adm%C4%B0n/users'],
    ['upper-case with ;params', '/ADMIN;jsessionid=1/users'],
    ['unreserved escape of A', '/%41dmin/users'],
  ])('%s: %s', async (_label, target) => {
    await expectRefused(gw, win, send('win.test', target), 400, 'GW_ERR_BAD_PATH');
    // an admin gets no other answer: the spelling is refused, not routed to /admin
    await expectRefused(gw, win, send('win.test', target, admin), 400, 'GW_ERR_BAD_PATH');
  });

  it.each([
    ['trailing .', '/admin./users'],
    ['trailing ..', '/admin../users'],
    ['trailing encoded space', '/admin%20/users'],
    ['trailing encoded .', '/admin%2E/users'],
    ['trailing . then space', '/admin.%20/users'],
    ['trailing . on the last segment', '/admin.'],
    ['trailing . on any segment', '/reports/Apple_Inc./q1'],
  ])('a segment ending in . or a space: %s: %s', async (_label, target) => {
    await expectRefused(gw, win, send('win.test', target), 400, 'GW_ERR_BAD_PATH');
  });

  it.each([
    ['8.3 short name', '/ADMINI~1/users'],
    ['8.3 short name, lower case', '/admini~1'],
    ['ASP.NET cookieless segment', '/(S(x))/admin/users'],
    ['cookieless segment, encoded', '/%28A%28x%29%29/admin/users'],
    ['cookieless segment after the route prefix', '/reports/(F(abc))/x'],
  ])('other Windows spellings: %s: %s', async (_label, target) => {
    await expectRefused(gw, win, send('win.test', target), 400, 'GW_ERR_BAD_PATH');
  });

  it('forwards the exact spelling to its own route, and names that fold to no other route', async () => {
    await forwardedTo(win, 'win.test', '/admin/users', admin);
    await forwardedTo(win, 'win.test', '/Reports/Q1.pdf');
    await forwardedTo(win, 'win.test', '/Apple_Inc/.well/x..y');
    await forwardedTo(win, 'win.test', '/caf%C3%A9/%C3%9Cber');
    await forwardedTo(win, 'win.test', '/administrator');
    await forwardedTo(win, 'win.test', '/a%20b/c?next=../Admin.');
    await forwardedTo(win, 'win.test', '/~user/a~b/(draft)/x(1)');
    const denied = await send('win.test', '/admin/users')();
    expect(denied.status).toBe(403);
  });
});

// Path-confusion corpus (Orange Tsai's "Breaking Parser Logic", PortSwigger's path confusion work, http-garden):
// each spelling of /admin is either refused (400) or neutralized: routed to the /admin route, whose policy
// then refuses the non-admin caller (403). Never forwarded through the catch-all.
describe('path-confusion corpus against a case-insensitive origin: refused or neutralized', () => {
  const refused = [
    '/admin/..;/x', '/./admin', '/admin/./users', '//admin', '/admin%2fusers', '/admin%5cusers', '/admin\\users',
    '/admin%00/users', '/admin%09', '/admin%0d%0a', '/%2e/admin', '/x/%2e%2e/admin', '/x/..%3b/admin', '/;/admin',
    '/admin%C0%AF', '/%EF%BD%81dmin', '/adm%E2%85%B0n', '/admin%3B/users', '/admin..;/users', '/Admin;x/users',
    '/ADMIN%3A%3A$DATA', '/admin%20%20/users', '/admin%2E%2E%2E', '/ADMINI~1', '/(S(x))/admin', '/adm%C4%B1n',
  ];
  it.each(refused)('%s is refused (400)', async (target) => {
    await expectRefused(gw, win, send('win.test', target), 400, ['GW_ERR_BAD_PATH', 'GW_ERR_BAD_REQUEST']);
  });

  const neutralized = ['/admin', '/admin/', '/%61dmin/users', '/admin;/users', '/admin;jsessionid=x/users', '/%61%64%6d%69%6e'];
  it.each(neutralized)('%s is routed to the /admin route (403 for a non-admin)', async (target) => {
    await expectRefused(gw, win, send('win.test', target), 403, 'GW_ERR_FORBIDDEN');
  });
});

describe('without case_insensitive, paths stay case-sensitive (as before)', () => {
  it.each(['/Admin/users', '/ADMIN/users', '/admin./users', '/admin%20/users', '/adm%C4%B1n/users', '/Apple_Inc./q1', '/ADMINI~1', '/(S(x))/admin'])('%s is forwarded to the catch-all', async (target) => {
    await forwardedTo(unix, 'unix.test', target);
  });
});

describe('%3B in a path is refused unless the upstream opts in', () => {
  it.each([
    ['%3B', '/admin%3Bx/users'],
    ['%3b', '/admin%3bx/users'],
    ['%3B at the end', '/admin%3B'],
    ['%3B after ;', '/a;b%3Bc/d'],
  ])('%s: %s', async (_label, target) => {
    await expectRefused(gw, unix, send('unix.test', target), 400, 'GW_ERR_BAD_PATH');
    await expectRefused(gw, win, send('win.test', target), 400, 'GW_ERR_BAD_PATH');
    await expectRefused(gw, unix, send('other.test', target), 400, 'GW_ERR_BAD_PATH');
  });

  it('allow_encoded_semicolon forwards it encoded; a raw ; and %3B in the query pass everywhere', async () => {
    await forwardedTo(semi, 'semi.test', '/admin%3Bx/users');
    await forwardedTo(unix, 'other.test', '/a;jsessionid=1/b?x=%3B');
  });

  it('keeps serving after the spelling attacks', async () => {
    await expectStillServing(gw, unix);
    expect((await get(`${gw.url}/still`)).status).toBe(200);
  });
});
