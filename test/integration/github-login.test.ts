// type: github (issue 19): the OAuth 2.0 code flow (with PKCE) against a local stand-in for GitHub's OAuth and
// REST endpoints (test/helpers/github.ts), laid out as GitHub Enterprise Server under one `url`. What the
// upstream receives is asserted exactly: the numeric user id as subject, only a verified primary email,
// allowed organizations and their org/team slugs as groups; membership checked again every membership_ttl.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { createCA } from '../../tools/pki.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { GH_CLIENT, startGithub, type GhUser, type GithubStandIn } from '../helpers/github.ts';
import { CookieJar, gatewayAgent, send, SESSION_SECRET } from '../helpers/oidc-provider.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { testClock } from '../helpers/wait.ts';

const HTML = { accept: 'text/html' };
const JSON_ACCEPT = { accept: 'application/json' };
const clock = testClock();

let gh: GithubStandIn;
let evil: GithubStandIn;
let upstream: Upstream;
let gw: TestGateway;
let agent: Agent;
let origin: string;

const octo = (): GhUser => ({
  id: 1001,
  login: 'octo',
  name: 'Octo Cat',
  email: 'public-profile@unverified.example',
  emails: [
    { email: 'secondary@corp.example', primary: false, verified: true },
    { email: 'octo@corp.example', primary: true, verified: true },
  ],
  orgs: ['Acme', 'other-org'],
  teams: [['Acme', 'platform'], ['other-org', 'secret-team'], ['acme', 'SRE']],
});

beforeAll(async () => {
  const ca = await createCA('github CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  gh = await startGithub();
  evil = await startGithub();
  upstream = await startUpstream();
  gw = await startGateway(
    `listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
shutdown: { drain_timeout: 1s }
log: { level: warn, access: false }
identity_providers:
  gh:
    type: github
    url: "${gh.url}"
    client_id: ${GH_CLIENT.id}
    client_secret: "\${env:GH_SECRET}"
    allowed_organizations: [acme, initech]
    membership_ttl: 10m
session: { secret: "\${env:SESSION_SECRET}", idle_timeout: 2h }
routes:
  - name: platform
    match: { path: /platform }
    upstream: { url: ${upstream.url} }
    authenticate: [gh]
    authorize: { allow: [{ groups: [acme/platform] }] }
  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url} }
    authenticate: [gh]
    authorize: { allow: [{ authenticated: true }] }
`,
    { files: { 'gw.crt': leaf.cert, 'gw.key': leaf.key }, env: { GH_SECRET: GH_CLIENT.secret, SESSION_SECRET }, now: clock.now },
  );
  origin = `https://localhost:${gw.port}`;
  agent = gatewayAgent(ca.cert);
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await agent?.close();
  await gh?.close();
  await evil?.close();
  await upstream?.close();
});

beforeEach(() => {
  gh.users = new Map([['octo', octo()]]);
  gh.approveAs = 'octo';
  gh.pageSize = 100;
  gh.linkOverride = undefined;
  gh.failWith = undefined;
  gh.calls.length = 0;
});

const at = (path: string, jar: CookieJar, headers = HTML) => send(`${origin}${path}`, { jar, headers, dispatcher: agent });
const apiCalls = () => gh.calls.filter((c) => c.path.startsWith('/api/v3/')).map((c) => c.path);

/** Browser login through GitHub's authorize step; returns the jar and the callback's answer. */
async function login(path = '/app') {
  const jar = new CookieJar();
  const start = await at(path, jar);
  expect(start.status).toBe(302);
  const authorize = new URL(start.location as string);
  const approved = await send(authorize.href, {});
  expect(approved.status).toBe(302);
  const callback = new URL(approved.location as string);
  const cb = await at(callback.pathname + callback.search, jar);
  return { jar, cb, authorize };
}

describe('type: github', () => {
  it('authorization code flow with PKCE at <url>/login/oauth/*; identity from <url>/api/v3', async () => {
    const { jar, cb, authorize } = await login('/app/home');
    expect(authorize.origin + authorize.pathname).toBe(`${gh.url}/login/oauth/authorize`);
    expect(authorize.searchParams.get('client_id')).toBe(GH_CLIENT.id);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${origin}/.zt/callback`);
    expect(authorize.searchParams.get('scope')).toBe('read:org user:email');
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(cb.status, cb.text).toBe(302);
    expect(cb.location).toBe('/app/home');

    const tokenCall = gh.calls.find((c) => c.path === '/login/oauth/access_token');
    expect(tokenCall?.accept).toBe('application/json');
    expect(tokenCall?.body?.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(tokenCall?.body?.get('client_secret')).toBe(GH_CLIENT.secret);
    const token = gh.tokens.get('octo');
    for (const c of gh.calls.filter((x) => x.path.startsWith('/api/v3/'))) expect(c.authorization).toBe(`Bearer ${token}`);
    expect(apiCalls().sort()).toEqual(['/api/v3/user', '/api/v3/user/emails', '/api/v3/user/orgs', '/api/v3/user/teams']);

    const before = upstream.received.length;
    const r = await at('/app/home', jar);
    expect(r.status).toBe(200);
    const got = upstream.received.slice(before);
    expect(got).toHaveLength(1);
    // The numeric id (a login can be renamed and reused), the verified primary address (never the public
    // profile one), only the allowed organizations and their teams, lowercased.
    expect(got[0]?.headers['x-zt-user']).toBe('1001');
    expect(got[0]?.headers['x-zt-email']).toBe('octo@corp.example');
    expect(got[0]?.headers['x-zt-groups']).toBe('acme,acme/platform,acme/sre');
    expect((await at('/platform/x', jar)).status).toBe(200);
  });

  it('a user in no allowed organization cannot log in (403, no session)', async () => {
    gh.users.set('octo', { ...octo(), orgs: ['other-org'], teams: [['other-org', 'platform']] });
    const { jar, cb } = await login();
    expect(cb.status).toBe(403);
    expect(cb.setCookie.some((c) => c.startsWith('__Host-zt='))).toBe(false);
    const before = upstream.received.length;
    expect((await at('/app', jar, JSON_ACCEPT)).status).toBe(401);
    expect(upstream.received.length).toBe(before);
  });

  it('an unverified primary address is no email at all', async () => {
    gh.users.set('octo', { ...octo(), emails: [{ email: 'octo@corp.example', primary: true, verified: false }, { email: 'other@corp.example', primary: false, verified: true }] });
    const { jar, cb } = await login();
    expect(cb.status, cb.text).toBe(302);
    const before = upstream.received.length;
    expect((await at('/app', jar)).status).toBe(200);
    const h = upstream.received.slice(before)[0]?.headers ?? {};
    expect(h['x-zt-email']).toBeUndefined();
    expect(h['x-zt-user']).toBe('1001');
  });

  it('membership is checked again after membership_ttl: team changes apply, leaving the organizations ends the session', async () => {
    const { jar, cb } = await login();
    expect(cb.status, cb.text).toBe(302);
    gh.calls.length = 0;
    // Within the TTL: no GitHub call at all.
    clock.advance(9 * 60_000);
    expect((await at('/platform/a', jar)).status).toBe(200);
    expect(apiCalls()).toEqual([]);
    // Past it: checked again (the same token), new teams apply; a renamed login keeps the same subject.
    gh.users.set('octo', { ...octo(), login: 'octo-renamed', teams: [['acme', 'sre']] });
    gh.users.set('octo-renamed', gh.users.get('octo') as GhUser);
    clock.advance(2 * 60_000);
    const before = upstream.received.length;
    expect((await at('/app', jar)).status).toBe(200);
    expect(apiCalls().sort()).toEqual(['/api/v3/user', '/api/v3/user/emails', '/api/v3/user/orgs', '/api/v3/user/teams']);
    const h = upstream.received.slice(before)[0]?.headers ?? {};
    expect(h['x-zt-user']).toBe('1001');
    expect(h['x-zt-groups']).toBe('acme,acme/sre');
    expect((await at('/platform/a', jar, JSON_ACCEPT)).status).toBe(403);

    // Left every allowed organization: at the next check the session is over.
    gh.users.set('octo', { ...octo(), orgs: ['other-org'], teams: [] });
    clock.advance(11 * 60_000);
    const n = upstream.received.length;
    expect((await at('/app', jar, JSON_ACCEPT)).status).toBe(401);
    expect(upstream.received.length).toBe(n);
  });

  it('a revoked token ends the session at the next check; GitHub down answers 503 (never lets the old groups through)', async () => {
    const { jar, cb } = await login();
    expect(cb.status, cb.text).toBe(302);
    gh.failWith = 502;
    clock.advance(11 * 60_000);
    const down = upstream.received.length;
    const r = await at('/app', jar, JSON_ACCEPT);
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ code: 'GW_ERR_DEPENDENCY_UNAVAILABLE' });
    expect(upstream.received.length).toBe(down);
    gh.failWith = undefined;
    expect((await at('/app', jar, JSON_ACCEPT)).status).toBe(200);
    gh.revoke('octo');
    clock.advance(11 * 60_000);
    const n = upstream.received.length;
    expect((await at('/app', jar, JSON_ACCEPT)).status).toBe(401);
    expect(upstream.received.length).toBe(n);
  });

  it('lists are read page by page; a Link to another origin is never followed', async () => {
    gh.pageSize = 1;
    gh.users.set('octo', { ...octo(), orgs: ['zeta', 'other-org', 'Acme'] });
    const first = await login();
    expect(first.cb.status, first.cb.text).toBe(302);
    expect(gh.calls.filter((c) => c.path === '/api/v3/user/orgs').map((c) => c.query.get('page'))).toEqual([null, '2', '3']);

    gh.calls.length = 0;
    gh.linkOverride = `<${evil.url}/api/v3/user/orgs?page=2>; rel="next"`;
    gh.users.set('octo', { ...octo(), orgs: ['other-org', 'Acme'] });
    const second = await login();
    // Page 1 holds only other-org: with the foreign next page ignored, no allowed organization is seen.
    expect(second.cb.status).toBe(403);
    expect(evil.calls).toEqual([]);
  });

  it('hostile answers: a non-numeric id refuses the login; a bad code is refused', async () => {
    gh.users.set('octo', { ...octo(), id: '1001' });
    expect((await login()).cb.status).toBe(503);

    gh.users.set('octo', octo());
    const jar = new CookieJar();
    const start = await at('/app', jar);
    const state = new URL(start.location as string).searchParams.get('state') as string;
    const cb = await at(`/.zt/callback?code=forged&state=${encodeURIComponent(state)}`, jar);
    expect(cb.status).toBe(401);
    expect(cb.setCookie.some((c) => c.startsWith('__Host-zt='))).toBe(false);
  });
});
