// Hostile browser-login tests against a REAL OpenID Provider (panva's oidc-provider on loopback): forged,
// missing and replayed state; replayed codes; swapped or tampered transaction cookies; ID tokens with
// another nonce, audience or issuer (re-signed with the provider's own key by a man in the middle of the
// token response); a code issued to another client; tampered and planted session cookies (fixation);
// cookies of ended sessions; open redirects after login; and hostile back-channel logout tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, SignJWT, type JWTPayload } from 'jose';
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

let op: TestOP;
let upstream: Upstream;
let g: OidcGateway;
let authorizationEndpoint: string;
const sealer = createSealer([SESSION_SECRET]);

interface Browser {
  jar: CookieJar;
  idp: CookieJar;
}
const browser = (): Browser => ({ jar: new CookieJar(), idp: new CookieJar() });

/** Starts a login at the gateway (navigation) and completes it at the provider: the callback, not yet sent. */
async function startAndAuthorize(b: Browser, path = '/app', account = 'bob'): Promise<{ callback: string; txName: string; txValue: string; state: string }> {
  const start = await g.send(path, { jar: b.jar, headers: HTML });
  expect(start.status).toBe(302);
  const txLine = start.setCookie.find((c) => c.startsWith('__Host-zt-tx-')) as string;
  const txName = txLine.slice(0, txLine.indexOf('='));
  const txValue = txLine.slice(txName.length + 1, txLine.indexOf(';'));
  const state = new URL(start.location as string).searchParams.get('state') as string;
  const { callback } = await loginAtProvider(op, start.location as string, b.idp, { account });
  return { callback: callback.slice(g.origin.length), txName, txValue, state };
}

function expectLoginRefused(r: Reply): void {
  expect(r.status, r.text).toBe(401);
  expect(r.json?.code).toBe('GW_ERR_UNAUTHENTICATED');
  expect(r.location).toBeUndefined();
  expect(r.setCookie.some((c) => c.startsWith('__Host-zt='))).toBe(false);
}

async function sessionOf(cookie: string): Promise<Record<string, unknown> | undefined> {
  return sealer.open(cookie, 'session');
}

beforeAll(async () => {
  const ca = await createCA('oidc hostile CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  authorizationEndpoint = (await send(`${op.issuer}/.well-known/openid-configuration`)).json.authorization_endpoint;
  g = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-hostile',
    routes: `  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`,
  });
  // Another (legitimate) client of the same provider.
  await op.addClient({ client_id: 'gw-other', client_secret: 'other-client-secret-0123456789', origin: 'https://localhost:1' });
});

afterAll(async () => {
  await g?.close();
  await upstream?.close();
  await op?.close();
});

describe('callback: state, transaction cookie, replay', () => {
  it('a wrong or missing state is refused (and does not burn the real transaction)', async () => {
    const b = browser();
    const { callback, state } = await startAndAuthorize(b);
    const forged = callback.replace(`state=${state}`, 'state=forged-state-value-1234567890');
    expect(forged).not.toBe(callback);
    expectLoginRefused(await g.send(forged, { jar: b.jar }));
    const url = new URL(`${g.origin}${callback}`);
    url.searchParams.delete('state');
    expectLoginRefused(await g.send(`${url.pathname}${url.search}`, { jar: b.jar }));
    expectLoginRefused(await g.send(`/.zt/callback`, { jar: b.jar }));
    // The genuine callback still completes: the forgeries never reached the provider.
    const ok = await g.send(callback, { jar: b.jar });
    expect(ok.status).toBe(302);
    expect(ok.location).toBe('/app');
  });

  it('a replayed callback (same code, same transaction cookie) is refused', async () => {
    const b = browser();
    const { callback, txName, txValue } = await startAndAuthorize(b);
    const first = await g.send(callback, { cookie: `${txName}=${txValue}` });
    expect(first.status).toBe(302);
    const before = op.tokenRequests.length;
    expectLoginRefused(await g.send(callback, { cookie: `${txName}=${txValue}` }));
    expect(op.tokenRequests.length).toBe(before); // refused by the gateway before the IdP is asked
  });

  it('a callback without its transaction cookie, or with a tampered one, is refused', async () => {
    const b = browser();
    const { callback, txName, txValue } = await startAndAuthorize(b);
    expectLoginRefused(await g.send(callback));
    expectLoginRefused(await g.send(callback, { cookie: 'unrelated=1' }));
    // Flip one character inside the ciphertext, then inside the tag.
    const parts = txValue.split('.');
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const badCipher = [parts[0], parts[1], parts[2], flip(parts[3] as string, 5), parts[4]].join('.');
    const badTag = [parts[0], parts[1], parts[2], parts[3], flip(parts[4] as string, 3)].join('.');
    expectLoginRefused(await g.send(callback, { cookie: `${txName}=${badCipher}` }));
    expectLoginRefused(await g.send(callback, { cookie: `${txName}=${badTag}` }));
    // A sealed value of another purpose (a session cookie) under the transaction's name.
    const other = browser();
    const done = await startAndAuthorize(other);
    const sessionReply = await g.send(done.callback, { jar: other.jar });
    expect(sessionReply.status).toBe(302);
    const sessionCookie = other.jar.get(g.origin, '__Host-zt') as string;
    expectLoginRefused(await g.send(callback, { cookie: `${txName}=${sessionCookie}` }));
    // The untouched cookie still works.
    expect((await g.send(callback, { cookie: `${txName}=${txValue}` })).status).toBe(302);
  });

  it('two logins in one browser: the transaction of one never completes the other (swap)', async () => {
    const b = browser();
    const one = await startAndAuthorize(b, '/one');
    const two = await g.send('/two', { jar: b.jar, headers: HTML });
    const twoLine = two.setCookie.find((c) => c.startsWith('__Host-zt-tx-')) as string;
    const twoValue = twoLine.slice(twoLine.indexOf('=') + 1, twoLine.indexOf(';'));
    // Login two's sealed transaction (its own state, nonce and verifier) under login one's cookie name.
    expectLoginRefused(await g.send(one.callback, { cookie: `${one.txName}=${twoValue}` }));
    // Both cookies present (what the browser really sends): only the matching one is used.
    const ok = await g.send(one.callback, { jar: b.jar });
    expect(ok.status).toBe(302);
    expect(ok.location).toBe('/one');
  });

  it('an error answer from the provider, and a POSTed callback, are refused', async () => {
    const b = browser();
    const start = await g.send('/denied', { jar: b.jar, headers: HTML });
    const state = new URL(start.location as string).searchParams.get('state') as string;
    expectLoginRefused(await g.send(`/.zt/callback?error=access_denied&state=${state}`, { jar: b.jar }));
    const post = await g.send(`/.zt/callback?code=x&state=${state}`, { jar: b.jar, method: 'POST', headers: FORM, body: '' });
    expect(post.status).toBe(404);
  });
});

describe('ID token checks (a man in the middle re-signs the token response with the provider key)', () => {
  const cases: Array<[string, (c: JWTPayload) => JWTPayload]> = [
    ['another nonce', (c) => ({ ...c, nonce: 'attacker-nonce' })],
    ['no nonce', (c) => Object.fromEntries(Object.entries(c).filter(([k]) => k !== 'nonce'))],
    ['an ID token for another client (aud)', (c) => ({ ...c, aud: 'gw-other' })],
    ['several audiences and azp of another client', (c) => ({ ...c, aud: ['gw-other', 'gw-hostile'], azp: 'gw-other' })],
    ['another issuer', (c) => ({ ...c, iss: 'http://127.0.0.1:1' })],
    ['an expired token', (c) => ({ ...c, exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 900 })],
    ['an at_hash that is not the access token\'s', (c) => ({ ...c, at_hash: 'AAAAAAAAAAAAAAAAAAAAAA' })],
  ];
  for (const [name, change] of cases) {
    it(`refuses ${name}`, async () => {
      const b = browser();
      const { callback } = await startAndAuthorize(b);
      op.tamperNextIdToken = change;
      const r = await g.send(callback, { jar: b.jar });
      expect(op.tamperNextIdToken).toBeUndefined(); // the token response really was rewritten
      expectLoginRefused(r);
      expect(b.jar.get(g.origin, '__Host-zt')).toBeUndefined();
    });
  }

  it('the unmodified re-signed token is accepted (the man in the middle itself breaks nothing)', async () => {
    const b = browser();
    const { callback } = await startAndAuthorize(b);
    op.tamperNextIdToken = (c) => c;
    const r = await g.send(callback, { jar: b.jar });
    expect(r.status).toBe(302);
  });

  it('a code issued to another client of the same provider is refused (code injection)', async () => {
    // The attacker runs a login for client gw-other (its own PKCE), and keeps the code.
    const attacker = new CookieJar();
    const otherAuth = new URL(authorizationEndpoint);
    otherAuth.search = new URLSearchParams({
      client_id: 'gw-other',
      response_type: 'code',
      scope: 'openid email',
      redirect_uri: 'https://localhost:1/.zt/callback',
      state: 'attacker-state',
      nonce: 'attacker-nonce',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();
    const { callback: otherCallback } = await loginAtProvider(op, otherAuth.href, attacker, { account: 'mallory' });
    const code = new URL(otherCallback).searchParams.get('code') as string;
    expect(code).toMatch(/.+/);
    // Then plants it in a login of its own at the gateway (a valid state and transaction cookie).
    const b = browser();
    const start = await g.send('/app', { jar: b.jar, headers: HTML });
    const state = new URL(start.location as string).searchParams.get('state') as string;
    const before = op.tokenRequests.length;
    const r = await g.send(`/.zt/callback?code=${encodeURIComponent(code)}&state=${state}&iss=${encodeURIComponent(op.issuer)}`, { jar: b.jar });
    expectLoginRefused(r);
    expect(op.tokenRequests.slice(before)).toEqual([expect.objectContaining({ grantType: 'authorization_code', clientId: 'gw-hostile', status: 400 })]);
  });
});

describe('session cookie: tampering, fixation, ended sessions', () => {
  it('a tampered session cookie is no session: navigation → login, API → 401, never the app', async () => {
    const b = browser();
    const { callback } = await startAndAuthorize(b, '/t', 'bob');
    expect((await g.send(callback, { jar: b.jar })).status).toBe(302);
    const cookie = b.jar.get(g.origin, '__Host-zt') as string;
    expect((await g.send('/t', { jar: b.jar, headers: HTML })).status).toBe(200);
    const before = upstream.received.length;
    for (let i = 60; i < cookie.length; i += Math.floor(cookie.length / 7)) {
      const c = cookie[i] === 'A' ? 'B' : 'A';
      const tampered = cookie.slice(0, i) + c + cookie.slice(i + 1);
      const nav = await g.send('/t', { headers: HTML, cookie: `__Host-zt=${tampered}` });
      expect(nav.status, `byte ${i}`).toBe(302);
      expect(nav.location?.startsWith(authorizationEndpoint)).toBe(true);
      expect((await g.send('/t', { headers: { accept: 'application/json' }, cookie: `__Host-zt=${tampered}` })).status).toBe(401);
    }
    for (const junk of ['', 'x', 'a.b.c.d.e', 'e30.e30.e30.e30.e30', `${cookie}x`, cookie.slice(0, -2), 'A'.repeat(5000)]) {
      const r = await g.send('/t', { headers: HTML, cookie: `__Host-zt=${junk}` });
      expect(r.status, junk.slice(0, 20)).toBe(302);
    }
    expect(upstream.received.length).toBe(before);
  });

  it('session fixation: a planted cookie (junk or the attacker’s own session) is replaced by a new session id at login', async () => {
    // The attacker logs in as herself and plants that cookie in the victim's browser.
    const mallory = browser();
    const m = await startAndAuthorize(mallory, '/m', 'mallory');
    expect((await g.send(m.callback, { jar: mallory.jar })).status).toBe(302);
    const planted = mallory.jar.get(g.origin, '__Host-zt') as string;
    const plantedId = (await sessionOf(planted))?.id;
    expect(plantedId).toMatch(/.+/);

    const victim = browser();
    victim.jar.set(g.origin, '__Host-zt', planted);
    const start = await g.send('/.zt/login?return_to=/inbox', { jar: victim.jar, headers: HTML });
    expect(start.status).toBe(302);
    const { callback } = await loginAtProvider(op, start.location as string, victim.idp, { account: 'bob' });
    const cb = await g.send(callback.slice(g.origin.length), { jar: victim.jar });
    expect(cb.status).toBe(302);
    expect(cb.location).toBe('/inbox');
    const fresh = victim.jar.get(g.origin, '__Host-zt') as string;
    expect(fresh).not.toBe(planted);
    const s = await sessionOf(fresh);
    expect(s?.sub).toBe('bob');
    expect(s?.id).not.toBe(plantedId);
    expect((await g.send('/inbox', { jar: victim.jar, headers: HTML })).status).toBe(200);
    expect(upstream.received[upstream.received.length - 1]?.headers['x-zt-user']).toBe('bob');
    // The planted session does not survive the victim's login either.
    expect((await g.send('/m', { headers: HTML, cookie: `__Host-zt=${planted}` })).status).toBe(302);

    // Junk planted before a login: same outcome, a new sealed session.
    const other = browser();
    other.jar.set(g.origin, '__Host-zt', 'attacker-chosen-session-id');
    const o = await startAndAuthorize(other, '/o', 'bob');
    expect((await g.send(o.callback, { jar: other.jar })).status).toBe(302);
    const mine = other.jar.get(g.origin, '__Host-zt') as string;
    expect(mine).not.toBe('attacker-chosen-session-id');
    expect((await sessionOf(mine))?.id).not.toBe('attacker-chosen-session-id');
  });

  it('a cookie from a session that logged out stays dead; another session of the same user lives on', async () => {
    const a = browser();
    const b = browser();
    for (const x of [a, b]) {
      const { callback } = await startAndAuthorize(x, '/both', 'carol');
      expect((await g.send(callback, { jar: x.jar })).status).toBe(302);
    }
    const aCookie = a.jar.get(g.origin, '__Host-zt') as string;
    const bCookie = b.jar.get(g.origin, '__Host-zt') as string;
    expect((await sessionOf(aCookie))?.id).not.toBe((await sessionOf(bCookie))?.id);
    expect((await g.send('/.zt/logout', { method: 'POST', jar: a.jar })).status).toBe(302);
    expect((await g.send('/both', { headers: HTML, cookie: `__Host-zt=${aCookie}` })).status).toBe(302);
    expect((await g.send('/.zt/userinfo', { cookie: `__Host-zt=${aCookie}` })).status).toBe(401);
    // A logout "with" the dead cookie changes nothing for the other session.
    expect((await g.send('/.zt/logout', { method: 'POST', cookie: `__Host-zt=${aCookie}` })).location).toBe('/');
    expect((await g.send('/both', { jar: b.jar, headers: HTML })).status).toBe(200);
    expect((await g.send('/.zt/logout', { method: 'POST', jar: b.jar })).status).toBe(302);
    expect((await g.send('/both', { headers: HTML, cookie: `__Host-zt=${bCookie}` })).status).toBe(302);
  });
});

describe('open redirect after login', () => {
  const hostile = [
    '//evil.example',
    '//evil.example/path',
    '/\\evil.example',
    '\\\\evil.example',
    '/%09/evil.example',
    '/\t/evil.example',
    'https:evil.example',
    'https://evil.example/',
    'javascript:alert(1)',
    '/%2F/evil.example',
    '/%2f%2fevil.example',
    '%2F%2Fevil.example',
    '/%5Cevil.example',
    '/%5C%5Cevil.example',
    '///evil.example',
    '/%0d%0aLocation:%20https://evil.example',
    '/%00//evil.example',
    ' //evil.example',
    '/\u3002evil.example',
    'evil.example',
    '',
  ];
  const idp = new CookieJar(); // one provider session: every login below is a silent SSO

  for (const value of hostile) {
    it(`return_to ${JSON.stringify(value)} → /`, async () => {
      const jar = new CookieJar();
      const start = await g.send(`/.zt/login?return_to=${encodeURIComponent(value)}`, { jar, headers: HTML });
      expect(start.status).toBe(302);
      expect(start.location?.startsWith(authorizationEndpoint)).toBe(true);
      const { callback } = await loginAtProvider(op, start.location as string, idp, { account: 'bob' });
      const cb = await g.send(callback.slice(g.origin.length), { jar });
      expect(cb.status).toBe(302);
      expect(cb.location).toBe('/');
    });
  }

  for (const value of ['/app/page?x=1', '/a/b?next=//evil.example', '/x/%2Fy', '/']) {
    it(`return_to ${JSON.stringify(value)} is kept`, async () => {
      const jar = new CookieJar();
      const start = await g.send(`/.zt/login?return_to=${encodeURIComponent(value)}`, { jar, headers: HTML });
      const { callback } = await loginAtProvider(op, start.location as string, idp, { account: 'bob' });
      const cb = await g.send(callback.slice(g.origin.length), { jar });
      expect(cb.location).toBe(value);
    });
  }

  it('a navigation to //evil.example is refused (400) before any login', async () => {
    const r = await g.send('//evil.example/x', { headers: HTML });
    expect(r.status).toBe(400);
    expect(r.location).toBeUndefined();
  });
});

describe('back-channel logout tokens', () => {
  const b = browser();
  let sid = '';

  beforeAll(async () => {
    const { callback } = await startAndAuthorize(b, '/bcl', 'carol');
    expect((await g.send(callback, { jar: b.jar })).status).toBe(302);
    sid = (await sessionOf(b.jar.get(g.origin, '__Host-zt') as string))?.sid as string;
    expect(sid).toMatch(/.+/);
  });

  const post = (body: string, headers: Record<string, string> = FORM) =>
    g.send('/.zt/backchannel-logout', { method: 'POST', headers, body });
  const postToken = (token: string) => post(new URLSearchParams({ logout_token: token }).toString());

  /** The refusal the gateway logged for a request (its reason and the underlying error, never answered). */
  async function loggedRefusal(requestId: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 50; i++) {
      const rec = g.gw.logs.find((l) => l.event === 'backchannel_logout_refused' && l.request_id === requestId);
      if (rec) return rec;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no backchannel_logout_refused logged for ${requestId}`);
  }

  /** A 400 problem with a stable code (and OIDC's invalid_request); the cause is logged, not answered. */
  async function expectRefused(r: Reply, reason: string): Promise<void> {
    expect(r.status, r.text).toBe(400);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.json).toMatchObject({ code: 'GW_ERR_BAD_REQUEST', status: 400, error: 'invalid_request' });
    expect(Object.keys(r.json).sort()).toEqual(['code', 'detail', 'error', 'request_id', 'status', 'title', 'type']);
    const logged = await loggedRefusal(r.json.request_id as string);
    expect(logged.reason).toBe(reason);
    expect(typeof logged.error).toBe('string');
    expect(r.text).not.toContain(logged.error as string);
  }

  it('refuses tokens that are not valid logout tokens — and none of them ends the session', async () => {
    const now = Math.floor(Date.now() / 1000);
    const foreign = await generateKeyPair('RS256');
    const cases: Array<[string, Promise<string> | string, string]> = [
      ['a nonce', op.logoutToken('gw-hostile', { sid }, { nonce: 'n-1' }), 'nonce'],
      ['another audience', op.logoutToken('gw-other', { sid }), 'rejected'],
      ['no events claim', op.logoutToken('gw-hostile', { sid }, { events: undefined }), 'no_event'],
      ['events without the back-channel event', op.logoutToken('gw-hostile', { sid }, { events: { 'http://schemas.openid.net/event/other': {} } }), 'no_event'],
      ['an events claim that is not an object', op.logoutToken('gw-hostile', { sid }, { events: 'logout' }), 'no_event'],
      ['neither sid nor sub', op.logoutToken('gw-hostile', {}), 'no_subject'],
      ['no jti', op.logoutToken('gw-hostile', { sid }, { jti: undefined }), 'rejected'],
      ['no iat', op.logoutToken('gw-hostile', { sid }, { iat: undefined }), 'rejected'],
      ['an old iat', op.logoutToken('gw-hostile', { sid }, { iat: now - 3600, exp: undefined }), 'rejected'],
      ['an expired token', op.logoutToken('gw-hostile', { sid }, { iat: now - 300, exp: now - 200 }), 'rejected'],
      ['an unknown issuer', op.logoutToken('gw-hostile', { sid }, { iss: 'http://127.0.0.1:1' }), 'unknown_issuer'],
      ['no exp', op.logoutToken('gw-hostile', { sid }, { exp: undefined }), 'rejected'],
      [
        'a valid payload typed as a plain JWT (an ID token would be)',
        op.sign({ iss: op.issuer, aud: 'gw-hostile', iat: now, exp: now + 60, jti: 'j-typ', sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }, { typ: 'JWT' }),
        'typ',
      ],
      [
        'a signature by another key',
        new SignJWT({ iss: op.issuer, aud: 'gw-hostile', iat: now, jti: 'j-foreign', sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
          .setProtectedHeader({ alg: 'RS256', kid: 'not-the-providers' })
          .sign(foreign.privateKey),
        'rejected',
      ],
      [
        'alg none',
        `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: op.issuer, aud: 'gw-hostile', iat: now, jti: 'j-none', sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })).toString('base64url')}.`,
        'rejected',
      ],
      ['not a JWT', 'this-is-not-a-jwt', 'not_jwt'],
      ['an empty token', '', 'missing'],
    ];
    for (const [name, token, reason] of cases) {
      const r = await postToken(await token);
      await expectRefused(r, reason).catch((err: Error) => {
        throw new Error(`${name}: ${err.message}`);
      });
    }
    await expectRefused(await post(''), 'missing');
    const big = await post('logout_token=a&x=' + 'y'.repeat(20_000));
    expect(big.status).toBe(413);
    expect(big.json.code).toBe('GW_ERR_BODY_TOO_LARGE');
    // Nothing above ended the session.
    expect((await g.send('/bcl', { jar: b.jar, headers: HTML })).status).toBe(200);
  });

  it('a replayed jti is refused', async () => {
    const token = await op.logoutToken('gw-hostile', { sid: 'unrelated-sid' });
    expect((await postToken(token)).status).toBe(200);
    await expectRefused(await postToken(token), 'replayed');
  });

  it('the valid token for this sid ends the session at once', async () => {
    const r = await postToken(await op.logoutToken('gw-hostile', { sid, sub: 'carol' }));
    expect(r.status).toBe(200);
    const nav = await g.send('/bcl', { jar: b.jar, headers: HTML });
    expect(nav.status).toBe(302);
    expect(nav.location?.startsWith(authorizationEndpoint)).toBe(true);
  });

  it('a sub-only token ends every earlier session of that subject', async () => {
    const x = browser();
    const { callback } = await startAndAuthorize(x, '/sub', 'mallory');
    expect((await g.send(callback, { jar: x.jar })).status).toBe(302);
    expect((await g.send('/sub', { jar: x.jar, headers: HTML })).status).toBe(200);
    expect((await postToken(await op.logoutToken('gw-hostile', { sub: 'mallory' }))).status).toBe(200);
    expect((await g.send('/sub', { jar: x.jar, headers: HTML })).status).toBe(302);
  });
});
