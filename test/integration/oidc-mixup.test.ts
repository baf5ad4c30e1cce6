// OIDC flows under attack with TWO real OpenID Providers in one gateway (issue 17, item 10): an authorization
// response from the other issuer (mix-up, with and without RFC 9207's `iss`), code replay into a fresh login,
// state replay after a successful login, a callback without its transaction cookie, back-channel logout tokens
// signed by the other provider's key or naming the other provider's sub/sid, and hostile `return_to` values on
// /.zt/login. Each refusal shows what the providers' token endpoints saw (nothing, when the gateway refuses
// first) and that the app behind the gateway received nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { createSealer } from '../../src/authn/oidc/sealed.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import {
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

const HTML = { accept: 'text/html' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

let opA: TestOP; // provider "corp", routes under /a
let opB: TestOP; // provider "other", routes under /b
let upstream: Upstream;
let g: OidcGateway;
const sealer = createSealer([SESSION_SECRET]);

interface Browser {
  jar: CookieJar;
  idpA: CookieJar;
  idpB: CookieJar;
}
const browser = (): Browser => ({ jar: new CookieJar(), idpA: new CookieJar(), idpB: new CookieJar() });

interface Started {
  /** The authorization URL the gateway sent the browser to. */
  authorize: string;
  state: string;
  txName: string;
  txValue: string;
}

async function startLogin(b: Browser, path: string): Promise<Started> {
  const start = await g.send(path, { jar: b.jar, headers: HTML });
  expect(start.status).toBe(302);
  const txLine = start.setCookie.find((c) => c.startsWith('__Host-zt-tx-')) as string;
  const txName = txLine.slice(0, txLine.indexOf('='));
  const txValue = txLine.slice(txName.length + 1, txLine.indexOf(';'));
  const authorize = start.location as string;
  return { authorize, state: new URL(authorize).searchParams.get('state') as string, txName, txValue };
}

/** Runs the authorization at `op` and returns the callback (path + query at the gateway), not yet sent. */
async function authorizeAt(op: TestOP, s: Started, idp: CookieJar, account = 'bob'): Promise<URL> {
  const { callback } = await loginAtProvider(op, s.authorize, idp, { account });
  return new URL(callback);
}

const pathOf = (u: URL) => `${u.pathname}${u.search}`;

function expectLoginRefused(r: Reply): void {
  expect(r.status, r.text).toBe(401);
  expect(r.json?.code).toBe('GW_ERR_UNAUTHENTICATED');
  expect(r.location).toBeUndefined();
  expect(r.setCookie.some((c) => c.startsWith('__Host-zt='))).toBe(false);
}

/** Token-endpoint calls at both providers since `mark` (what a refusal let through). */
function tokenCallsSince(mark: { a: number; b: number }) {
  return { a: opA.tokenRequests.slice(mark.a), b: opB.tokenRequests.slice(mark.b) };
}
const mark = () => ({ a: opA.tokenRequests.length, b: opB.tokenRequests.length });

async function loggedIn(b: Browser, path: string, op: TestOP, idp: CookieJar, account: string): Promise<Record<string, unknown>> {
  const s = await startLogin(b, path);
  const cb = await g.send(pathOf(await authorizeAt(op, s, idp, account)), { jar: b.jar });
  expect(cb.status, cb.text).toBe(302);
  expect(cb.location).toBe(path);
  return (await sealer.open(b.jar.get(g.origin, '__Host-zt') as string, 'session')) as Record<string, unknown>;
}

beforeAll(async () => {
  const ca = await createCA('oidc mix-up CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  opA = await startOidcProvider({ gatewayCa: ca.cert });
  opB = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  g = await startOidcGateway(opA, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-mix-a',
    providers: `  other: { type: oidc, issuer: "${opB.issuer}", client_id: gw-mix-b, client_secret: "\${env:OIDC_SECRET}", timeout: 5s }`,
    routes: `  - name: a
    match: { path: /a }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
  - name: b
    match: { path: /b }
    upstream: { url: ${upstream.url} }
    authenticate: [other]
    authorize: { allow: [{ authenticated: true }] }
`,
  });
  await opB.addClient({ client_id: 'gw-mix-b', client_secret: g.clientSecret, origin: g.origin });
});

afterAll(async () => {
  await g?.close();
  await upstream?.close();
  await opA?.close();
  await opB?.close();
});

describe('mix-up: an authorization response from the other issuer', () => {
  it('both providers advertise RFC 9207 and put `iss` in their authorization responses', async () => {
    for (const op of [opA, opB]) {
      const meta = (await send(`${op.issuer}/.well-known/openid-configuration`)).json;
      expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    }
    const b = browser();
    const cb = await authorizeAt(opA, await startLogin(b, '/a/iss'), b.idpA);
    expect(cb.searchParams.get('iss')).toBe(opA.issuer);
  });

  it("A's code (iss=A) delivered to a login started for B never reaches B's token endpoint", async () => {
    // The victim's login was for B; the response that comes back is A's (an honest code for another issuer).
    const victim = browser();
    const forB = await startLogin(victim, '/b/x');
    expect(forB.authorize.startsWith(opB.issuer)).toBe(true);
    const other = browser();
    const fromA = await authorizeAt(opA, await startLogin(other, '/a/x'), other.idpA);
    const injected = new URL(fromA);
    injected.searchParams.set('state', forB.state);
    const m = mark();
    const before = upstream.received.length;
    expectLoginRefused(await g.send(pathOf(injected), { jar: victim.jar }));
    expect(tokenCallsSince(m)).toEqual({ a: [], b: [] });
    expect(upstream.received.length).toBe(before);
  });

  it("B's code with iss=B delivered to a login started for A is refused before A's token endpoint", async () => {
    const victim = browser();
    const forA = await startLogin(victim, '/a/y');
    const other = browser();
    const fromB = await authorizeAt(opB, await startLogin(other, '/b/y'), other.idpB);
    expect(fromB.searchParams.get('iss')).toBe(opB.issuer);
    fromB.searchParams.set('state', forA.state);
    const m = mark();
    expectLoginRefused(await g.send(pathOf(fromB), { jar: victim.jar }));
    expect(tokenCallsSince(m)).toEqual({ a: [], b: [] });
  });

  it('a response without `iss` from a provider that advertises it is refused before any token request', async () => {
    const b = browser();
    const s = await startLogin(b, '/a/noiss');
    const cb = await authorizeAt(opA, s, b.idpA);
    cb.searchParams.delete('iss');
    const m = mark();
    expectLoginRefused(await g.send(pathOf(cb), { jar: b.jar }));
    expect(tokenCallsSince(m)).toEqual({ a: [], b: [] });
  });

  it("B's code relabelled iss=A in A's login: A's token endpoint refuses it (the code is not A's), no session", async () => {
    const victim = browser();
    const forA = await startLogin(victim, '/a/z');
    const other = browser();
    const fromB = await authorizeAt(opB, await startLogin(other, '/b/z'), other.idpB);
    fromB.searchParams.set('state', forA.state);
    fromB.searchParams.set('iss', opA.issuer);
    const m = mark();
    expectLoginRefused(await g.send(pathOf(fromB), { jar: victim.jar }));
    expect(tokenCallsSince(m)).toEqual({ a: [expect.objectContaining({ grantType: 'authorization_code', clientId: 'gw-mix-a', status: 400 })], b: [] });
  });
});

describe('replays', () => {
  it('a used code replayed into a fresh login (new state and transaction) gets no session', async () => {
    const b = browser();
    const first = await startLogin(b, '/a/code');
    const cb = await authorizeAt(opA, first, b.idpA);
    expect((await g.send(pathOf(cb), { jar: b.jar })).status).toBe(302);
    const attacker = browser();
    const fresh = await startLogin(attacker, '/a/code');
    const replay = new URL(cb);
    replay.searchParams.set('state', fresh.state);
    const m = mark();
    expectLoginRefused(await g.send(pathOf(replay), { jar: attacker.jar }));
    // The provider was asked (the gateway cannot know the code) and refused it: used, and PKCE does not match.
    expect(tokenCallsSince(m)).toEqual({ a: [expect.objectContaining({ grantType: 'authorization_code', status: 400 })], b: [] });
    expect(attacker.jar.get(g.origin, '__Host-zt')).toBeUndefined();
  });

  it("state replay after a successful login: a new code for the same authorization request and the old transaction cookie", async () => {
    const b = browser();
    const s = await startLogin(b, '/a/state');
    const cb = await authorizeAt(opA, s, b.idpA);
    expect((await g.send(pathOf(cb), { jar: b.jar })).status).toBe(302);
    // The same authorization URL (same state, nonce, PKCE challenge) run again at the provider: a fresh code.
    const again = await authorizeAt(opA, s, b.idpA);
    expect(again.searchParams.get('state')).toBe(s.state);
    expect(again.searchParams.get('code')).not.toBe(cb.searchParams.get('code'));
    const m = mark();
    expectLoginRefused(await g.send(pathOf(again), { cookie: `${s.txName}=${s.txValue}` }));
    // With the browser's cookies as they are after the login (session, no transaction) too.
    expectLoginRefused(await g.send(pathOf(again), { jar: b.jar }));
    expect(tokenCallsSince(m)).toEqual({ a: [], b: [] });
  });

  it('a callback without the transaction cookie of its login is refused before any token request', async () => {
    const b = browser();
    const s = await startLogin(b, '/a/nocookie');
    const cb = await authorizeAt(opA, s, b.idpA);
    // Another pending login's cookie is present; this login's is not.
    const other = await startLogin(browser(), '/b/nocookie');
    const m = mark();
    expectLoginRefused(await g.send(pathOf(cb)));
    expectLoginRefused(await g.send(pathOf(cb), { cookie: `${other.txName}=${other.txValue}` }));
    expect(tokenCallsSince(m)).toEqual({ a: [], b: [] });
    // The genuine browser still completes it.
    expect((await g.send(pathOf(cb), { jar: b.jar })).status).toBe(302);
  });
});

describe("back-channel logout tokens that name the other provider's sessions", () => {
  const b = browser();
  let sessionA: Record<string, unknown>;
  const now = () => Math.floor(Date.now() / 1000);
  const post = (token: string) =>
    g.send('/.zt/backchannel-logout', { method: 'POST', headers: FORM, body: new URLSearchParams({ logout_token: token }).toString() });
  const stillIn = async () => (await g.send('/a/bcl', { jar: b.jar, headers: HTML })).status;

  beforeAll(async () => {
    sessionA = await loggedIn(b, '/a/bcl', opA, b.idpA, 'carol');
    expect(sessionA.sid).toMatch(/.+/);
    expect(await stillIn()).toBe(200);
  });

  it("a token claiming A's issuer but signed with B's key is refused; the session lives on", async () => {
    const forged = await opB.sign(
      { iss: opA.issuer, aud: 'gw-mix-a', iat: now(), exp: now() + 60, jti: `j-${Date.now()}`, sid: sessionA.sid as string, sub: 'carol', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } },
      { typ: 'logout+jwt' },
    );
    const r = await post(forged);
    expect(r.status).toBe(400);
    expect(r.json?.code).toBe('GW_ERR_BAD_REQUEST');
    expect(await stillIn()).toBe(200);
  });

  it("B's valid logout token with A's sid, or with A's subject, ends nothing at A", async () => {
    for (const claims of [{ sid: sessionA.sid as string }, { sub: 'carol' }, { sub: 'carol', sid: sessionA.sid as string }]) {
      const r = await post(await opB.logoutToken('gw-mix-b', claims));
      expect(r.status, JSON.stringify(claims)).toBe(200); // a valid token from B: accepted, for B's sessions only
      expect(await stillIn(), JSON.stringify(claims)).toBe(200);
    }
  });

  it("A's token for the session ends it (the checks above were not vacuous)", async () => {
    expect((await post(await opA.logoutToken('gw-mix-a', { sid: sessionA.sid as string }))).status).toBe(200);
    const nav = await g.send('/a/bcl', { jar: b.jar, headers: HTML });
    expect(nav.status).toBe(302);
    expect(nav.location?.startsWith(opA.issuer)).toBe(true);
  });
});

describe('return_to on /.zt/login', () => {
  const idp = new CookieJar();
  for (const value of ['//evil.example', '/\\evil.example', 'https:evil.example', '/%2F%2Fevil.example', '/%5Cevil.example']) {
    it(`${JSON.stringify(value)} → / after the login, with either provider`, async () => {
      for (const [provider, op] of [['corp', opA], ['other', opB]] as const) {
        const jar = new CookieJar();
        const start = await g.send(`/.zt/login?provider=${provider}&return_to=${encodeURIComponent(value)}`, { jar, headers: HTML });
        expect(start.status).toBe(302);
        expect(start.location?.startsWith(op.issuer)).toBe(true);
        const { callback } = await loginAtProvider(op, start.location as string, idp, { account: 'bob' });
        const cb = await g.send(callback.slice(g.origin.length), { jar });
        expect(cb.status).toBe(302);
        expect(cb.location).toBe('/');
      }
    });
  }
});
