// Unit tests for the JWT provider (src/authn/jwt.ts), its key source (src/authn/jwks.ts) and Authorization
// parsing (src/authn/credentials.ts), against a real JWKS/discovery server on loopback.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { credentialsFor, isToken68, unauthenticated } from '../../src/authn/credentials.ts';
import { buildAuthenticator } from '../../src/authn/index.ts';
import { RemoteKeySource } from '../../src/authn/jwks.ts';
import { createJwtAuthenticator, MAX_TOKEN_BYTES, type JwtProviderOptions } from '../../src/authn/jwt.ts';
import type { Identity } from '../../src/core/identity.ts';
import type { Authenticator, AuthRequest } from '../../src/authn/types.ts';
import { configSchema } from '../../src/config/schema.ts';
import { GatewayError } from '../../src/core/errors.ts';
import { craftJwt, startIdp, type IdpKey, type TestIdp } from '../helpers/idp.ts';
import { sleep, testClock, waitFor } from '../helpers/wait.ts';

const SECRET = 'a-shared-secret-that-is-at-least-32-bytes-long';

let idp: TestIdp;
const servers: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  idp = await startIdp({ algs: ['ES256', 'RS256', 'EdDSA'] });
  servers.push(idp);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

function options(over: Partial<JwtProviderOptions> = {}, source: TestIdp = idp): JwtProviderOptions {
  return {
    name: 'unit',
    issuer: source.issuer,
    audiences: ['gw'],
    algorithms: ['ES256', 'RS256', 'EdDSA'],
    jwksUri: source.jwksUri,
    secret: undefined,
    clockToleranceMs: 30_000,
    maxTokenAgeMs: undefined,
    typ: undefined,
    trustEmail: false,
    claims: { subject: 'sub', email: 'email', email_verified: 'email_verified', groups: 'groups' },
    jwks: { timeoutMs: 1000, cooldownMs: 1000, maxAgeMs: 600_000, ca: undefined },
    cacheEntries: 100,
    ...over,
  };
}

const req = (authorization?: string): AuthRequest => ({ authorization, rawHeaders: [], socket: undefined as unknown as Socket });
const bearer = (token: string) => req(`Bearer ${token}`);

/** Runs authenticate, turning a synchronous throw into a rejection. */
async function run(a: Authenticator, r: AuthRequest): Promise<Identity | undefined> {
  return a.authenticate(r);
}

async function rejects(a: Authenticator, r: AuthRequest, code: string, description?: string | RegExp): Promise<GatewayError> {
  let caught: unknown;
  try {
    await run(a, r);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(GatewayError);
  const err = caught as GatewayError;
  expect(err.code).toBe(code);
  if (description !== undefined) expect(err.detail).toMatch(description);
  return err;
}

/** A loopback JSON server answering every path with `answer` (for discovery/JWKS edge cases). */
async function serve(answer: (path: string, res: http.ServerResponse) => void): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((rq, res) => {
    hits.push(rq.url ?? '');
    answer(rq.url ?? '', res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const handle = {
    url,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  servers.push(handle);
  return handle;
}

describe('credentials', () => {
  it('credentialsFor: scheme case-insensitive, exactly one space after it, other schemes are not ours', () => {
    expect(credentialsFor('Bearer abc', 'Bearer')).toBe('abc');
    expect(credentialsFor('bEARER abc', 'Bearer')).toBe('abc');
    expect(credentialsFor('Bearer  abc ', 'Bearer')).toBe('abc');
    expect(credentialsFor('ApiKey k1', 'ApiKey')).toBe('k1');
    expect(credentialsFor('Basic abc', 'Bearer')).toBeUndefined();
    expect(credentialsFor('Bearerabc', 'Bearer')).toBeUndefined();
    expect(credentialsFor('Bearer', 'Bearer')).toBeUndefined();
    expect(credentialsFor('XBearer abc', 'Bearer')).toBeUndefined();
    expect(credentialsFor(undefined, 'Bearer')).toBeUndefined();
  });

  it('isToken68', () => {
    for (const ok of ['abc', 'a.b.c', 'a-b_c~d+e/f==', 'e30.e30.']) expect(isToken68(ok)).toBe(true);
    for (const bad of ['', 'a b', 'a"b', 'a,b', '=abc', 'a=b', 'ä', 'a\r\nb']) expect(isToken68(bad)).toBe(false);
  });

  it('unauthenticated: RFC 6750 challenge; the description cannot break out of its quoted string', () => {
    const err = unauthenticated('Bearer realm="zt-gateway"', 'bad "token" \\ here');
    expect(err.code).toBe('GW_ERR_UNAUTHENTICATED');
    expect(err.status).toBe(401);
    expect(err.headers).toEqual([
      ['www-authenticate', 'Bearer realm="zt-gateway", error="invalid_token", error_description="bad token  here"'],
    ]);
    expect(unauthenticated('ApiKey realm="x"', 'd', 'invalid_request').headers[0]?.[1]).toContain('error="invalid_request"');
  });
});

describe('JWT authenticator', () => {
  it('is not responsible without a Bearer credential', () => {
    const a = createJwtAuthenticator(options());
    expect(a.authenticate(req())).toBeUndefined();
    expect(a.authenticate(req('Basic YTpi'))).toBeUndefined();
    expect(a.authenticate(req('ApiKey k'))).toBeUndefined();
    expect(a.consumes).toEqual(['authorization']);
    expect(a.challenge).toBe('Bearer realm="zt-gateway"');
  });

  it('maps a verified token to an Identity', async () => {
    const a = createJwtAuthenticator(options());
    const token = await idp.sign(
      { email: 'a@x.example', email_verified: true, groups: ['g1', 2, 'g2'], amr: ['pwd', 'otp'], acr: 'mfa', auth_time: 1000 },
      { key: idp.key('EdDSA'), sub: 'alice' },
    );
    const pending = a.authenticate(bearer(token));
    expect(pending).toBeInstanceOf(Promise);
    const id = (await pending) as Identity;
    expect(id).toMatchObject({
      subject: 'alice',
      provider: 'unit',
      issuer: idp.issuer,
      method: 'jwt',
      email: 'a@x.example',
      emailVerified: true,
      groups: ['g1', 'g2'],
      amr: ['pwd', 'otp'],
      acr: 'mfa',
      authTime: 1000,
      spiffeId: undefined,
    });
    expect(id.expiresAt).toBe(id.claims.exp);
    expect(Object.isFrozen(id) && Object.isFrozen(id.groups) && Object.isFrozen(id.claims)).toBe(true);
  });

  it('claim names are configurable; a string groups claim is a one-element list; email trust', async () => {
    const a = createJwtAuthenticator(
      options({ claims: { subject: 'uid', email: 'mail', email_verified: 'mail_ok', groups: 'roles' }, trustEmail: false }),
    );
    const id = (await run(a, bearer(await idp.sign({ uid: 'u-1', mail: 'm@x', mail_ok: true, roles: 'admin' }, { sub: 'ignored' }))))!;
    expect(id).toMatchObject({ subject: 'u-1', email: 'm@x', emailVerified: true, groups: ['admin'] });
    await rejects(a, bearer(await idp.sign({}, { sub: 'no-uid' })), 'GW_ERR_UNAUTHENTICATED', /uid/);

    const plain = createJwtAuthenticator(options());
    expect((await run(plain, bearer(await idp.sign({ email: 'e@x', email_verified: 'true' }))))!.emailVerified).toBe(false);
    const trusting = createJwtAuthenticator(options({ trustEmail: true }));
    expect((await run(trusting, bearer(await idp.sign({ email: 'e@x' }))))!.emailVerified).toBe(true);
  });

  it('refuses with precise descriptions and an invalid_token challenge', async () => {
    const a = createJwtAuthenticator(options());
    const expired = await rejects(a, bearer(await idp.sign({}, { expIn: -60, iatIn: -120 })), 'GW_ERR_UNAUTHENTICATED', 'token expired');
    expect(expired.headers[0]?.[1]).toMatch(/^Bearer realm="zt-gateway", error="invalid_token"/);
    await rejects(a, bearer(await idp.sign({}, { nbfIn: 60 })), 'GW_ERR_UNAUTHENTICATED', /nbf/);
    await rejects(a, bearer(await idp.sign({}, { iss: 'https://evil.example' })), 'GW_ERR_UNAUTHENTICATED', /iss/);
    await rejects(a, bearer(await idp.sign({}, { aud: 'other' })), 'GW_ERR_UNAUTHENTICATED', /aud/);
    await rejects(a, bearer(await idp.sign({}, { expIn: null })), 'GW_ERR_UNAUTHENTICATED', /exp/);
    await rejects(a, bearer(craftJwt({ alg: 'none' }, { sub: 'x' })), 'GW_ERR_UNAUTHENTICATED', 'token algorithm not allowed');
    await rejects(a, bearer('x'.repeat(MAX_TOKEN_BYTES + 1)), 'GW_ERR_UNAUTHENTICATED', 'token too large');
    await rejects(a, bearer('a.b.c.d.e'), 'GW_ERR_UNAUTHENTICATED', 'token is not a signed JWT');
    await rejects(a, bearer('a.b.c'), 'GW_ERR_UNAUTHENTICATED', 'token is invalid');
  });

  it('the size cap is checked synchronously, before any parsing', () => {
    const a = createJwtAuthenticator(options());
    expect(() => a.authenticate(bearer(`${'e'.repeat(MAX_TOKEN_BYTES)}.x.y`))).toThrow(GatewayError);
  });

  it('iat in the future: refused beyond the clock tolerance, accepted within', async () => {
    const a = createJwtAuthenticator(options({ clockToleranceMs: 5000 }));
    await rejects(a, bearer(await idp.sign({}, { iatIn: 60, expIn: 600 })), 'GW_ERR_UNAUTHENTICATED', /iat/);
    expect(await run(a, bearer(await idp.sign({}, { iatIn: 3 })))).toBeDefined();
  });

  it('max_token_age refuses old tokens', async () => {
    const a = createJwtAuthenticator(options({ maxTokenAgeMs: 60_000, clockToleranceMs: 0 }));
    await rejects(a, bearer(await idp.sign({}, { iatIn: -120 })), 'GW_ERR_UNAUTHENTICATED');
    await rejects(a, bearer(await idp.sign({}, { iatIn: null })), 'GW_ERR_UNAUTHENTICATED', /iat/);
    expect(await run(a, bearer(await idp.sign({}, { iatIn: -30 })))).toBeDefined();
  });

  it('typ check when configured', async () => {
    const a = createJwtAuthenticator(options({ typ: 'at+jwt' }));
    await rejects(a, bearer(await idp.sign()), 'GW_ERR_UNAUTHENTICATED', /typ/);
    expect(await run(a, bearer(await idp.sign({}, { header: { typ: 'at+jwt' } })))).toBeDefined();
  });

  it('HS256 only with a configured secret; never with the JWKS', async () => {
    const a = createJwtAuthenticator(options({ secret: SECRET, algorithms: ['HS256'], jwksUri: undefined }));
    const now = Math.floor(Date.now() / 1000);
    const sign = (secret: string) =>
      new SignJWT({ sub: 'svc' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(idp.issuer)
        .setAudience('gw')
        .setExpirationTime(now + 60)
        .sign(new TextEncoder().encode(secret));
    expect((await run(a, bearer(await sign(SECRET))))!.subject).toBe('svc');
    await rejects(a, bearer(await sign(`${SECRET}-other`)), 'GW_ERR_UNAUTHENTICATED', 'token is invalid');
    await rejects(a, bearer(await idp.sign()), 'GW_ERR_UNAUTHENTICATED', 'token algorithm not allowed');
    // a JWKS provider never accepts HS256 (it is not in its allowlist)
    await rejects(createJwtAuthenticator(options()), bearer(await sign(SECRET)), 'GW_ERR_UNAUTHENTICATED', 'token algorithm not allowed');
  });

  it('refuses jwk/jku/x5u/x5c headers before touching the key source', async () => {
    const fresh = await startIdp();
    servers.push(fresh);
    const a = createJwtAuthenticator(options({}, fresh));
    for (const header of [{ jwk: fresh.key('ES256').jwk }, { jku: fresh.jwksUri }, { x5u: 'https://x' }, { x5c: ['MIIB'] }]) {
      await rejects(a, bearer(await fresh.sign({}, { header })), 'GW_ERR_UNAUTHENTICATED', /not accepted/);
    }
    expect(fresh.fetches.jwks).toBe(0);
  });
});

describe('verified-token cache', () => {
  it('a second authenticate of the same token is synchronous and returns the same Identity', async () => {
    const a = createJwtAuthenticator(options());
    const token = await idp.sign();
    const first = await run(a, bearer(token));
    const before = idp.fetches.jwks;
    const second = a.authenticate(bearer(token));
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toBe(first);
    expect(idp.fetches.jwks).toBe(before);
    // a different token is verified
    expect(a.authenticate(bearer(await idp.sign()))).toBeInstanceOf(Promise);
  });

  it('is bounded (oldest entry evicted) and cache_entries: 0 disables it', async () => {
    const a = createJwtAuthenticator(options({ cacheEntries: 2 }));
    const [t1, t2, t3] = await Promise.all([idp.sign(), idp.sign(), idp.sign()]);
    for (const t of [t1, t2, t3]) await run(a, bearer(t!));
    expect(a.authenticate(bearer(t3!))).not.toBeInstanceOf(Promise);
    expect(a.authenticate(bearer(t2!))).not.toBeInstanceOf(Promise);
    const evicted = a.authenticate(bearer(t1!));
    expect(evicted).toBeInstanceOf(Promise);
    await evicted;

    const none = createJwtAuthenticator(options({ cacheEntries: 0 }));
    await run(none, bearer(t1!));
    const again = none.authenticate(bearer(t1!));
    expect(again).toBeInstanceOf(Promise);
    await again;
  });

  it('entries never outlive exp', async () => {
    const a = createJwtAuthenticator(options({ clockToleranceMs: 0 }));
    const token = await idp.sign({}, { expIn: 2 });
    const exp = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
    await run(a, bearer(token));
    expect(a.authenticate(bearer(token))).not.toBeInstanceOf(Promise);
    await sleep(Math.max(0, exp * 1000 + 20 - Date.now()));
    await rejects(a, bearer(token), 'GW_ERR_UNAUTHENTICATED', 'token expired');
  });

  it('entries never outlive iat + max_token_age', async () => {
    const a = createJwtAuthenticator(options({ maxTokenAgeMs: 1000, clockToleranceMs: 0 }));
    const token = await idp.sign({}, { expIn: 600 });
    const iat = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { iat: number }).iat;
    await run(a, bearer(token));
    await sleep(Math.max(0, iat * 1000 + 1020 - Date.now()));
    const later = a.authenticate(bearer(token));
    expect(later).toBeInstanceOf(Promise); // not served from the cache any more
    await (later as Promise<unknown>).catch(() => undefined);
  });

  it('a cached identity is per provider: another provider verifies the token itself', async () => {
    const a = createJwtAuthenticator(options());
    const b = createJwtAuthenticator(options({ audiences: ['other'] }));
    const token = await idp.sign();
    await run(a, bearer(token));
    await rejects(b, bearer(token), 'GW_ERR_UNAUTHENTICATED', /aud/);
  });
});

describe('key selection', () => {
  let rotating: TestIdp;
  let k1: IdpKey;
  let k2: IdpKey;
  beforeAll(async () => {
    rotating = await startIdp({ algs: ['ES256'] });
    servers.push(rotating);
    k1 = rotating.key('ES256');
    k2 = await rotating.addKey('ES256');
  });

  it('a token without kid is verified against every matching key (two ES256 keys during a rotation)', async () => {
    const a = createJwtAuthenticator(options({}, rotating));
    expect((await run(a, bearer(await rotating.sign({}, { key: k1, kid: null, sub: 'one' }))))!.subject).toBe('one');
    expect((await run(a, bearer(await rotating.sign({}, { key: k2, kid: null, sub: 'two' }))))!.subject).toBe('two');
    const stranger = await rotating.generateKey('ES256');
    await rejects(a, bearer(await rotating.sign({}, { key: stranger, kid: null })), 'GW_ERR_UNAUTHENTICATED', 'token is invalid');
    // a matching key still enforces the claims
    await rejects(a, bearer(await rotating.sign({}, { key: k2, kid: null, aud: 'other' })), 'GW_ERR_UNAUTHENTICATED', /aud/);
  });

  it('keys published for encryption (use: enc) are never used to verify', async () => {
    const enc = await rotating.generateKey('ES256');
    rotating.publish({ ...enc, jwk: { ...enc.jwk, use: 'enc' } });
    const a = createJwtAuthenticator(options({}, rotating));
    await rejects(a, bearer(await rotating.sign({}, { key: enc })), 'GW_ERR_UNAUTHENTICATED', 'token signing key is unknown');
    rotating.unpublish(enc.kid);
  });
});

describe('RemoteKeySource', () => {
  const header = (kid: string | undefined) => ({ alg: 'ES256', ...(kid ? { kid } : {}) });
  const token = { payload: '', signature: '', protected: '' };
  const source = (over: Partial<ConstructorParameters<typeof RemoteKeySource>[0]> & { issuer: string }) =>
    new RemoteKeySource({ jwksUri: undefined, timeoutMs: 1000, cooldownMs: 60_000, maxAgeMs: 600_000, dispatcher: undefined, ...over });

  it('concurrent first lookups share one fetch; unknown kids within the cooldown do not refetch', async () => {
    const s = await startIdp();
    servers.push(s);
    const events: string[] = [];
    const clock = testClock();
    const ks = source({ issuer: s.issuer, jwksUri: s.jwksUri, cooldownMs: 500, onEvent: (e) => events.push(e), now: clock.now });
    const kid = s.key('ES256').kid;
    await Promise.all(Array.from({ length: 20 }, () => ks.getKey(header(kid), token)));
    expect(s.fetches.jwks).toBe(1);
    await Promise.all(Array.from({ length: 20 }, () => ks.getKey(header('unknown'), token).catch(() => undefined)));
    expect(s.fetches.jwks).toBe(1); // still in the cooldown of the initial load
    clock.advance(550); // past the cooldown
    await Promise.all(Array.from({ length: 20 }, () => ks.getKey(header('unknown'), token).catch(() => undefined)));
    expect(s.fetches.jwks).toBe(2); // one refetch for the whole burst
    expect(events).toEqual(['refreshed', 'refreshed']);
  });

  it('refreshes in the background after max_age; stale keys serve meanwhile and while the IdP is down', async () => {
    const s = await startIdp();
    servers.push(s);
    const events: string[] = [];
    const clock = testClock();
    const ks = source({ issuer: s.issuer, jwksUri: s.jwksUri, cooldownMs: 100, maxAgeMs: 200, onEvent: (e) => events.push(e), now: clock.now });
    const kid = s.key('ES256').kid;
    await ks.getKey(header(kid), token);
    clock.advance(250); // past max_age
    await ks.getKey(header(kid), token);
    // Done means loaded, not just requested: a refresh still in flight would absorb the next one (single flight).
    await waitFor(() => events.length === 2, { what: 'the background JWKS refresh to complete' });
    expect(events).toEqual(['refreshed', 'refreshed']);
    expect(s.fetches.jwks).toBe(2);
    await s.stop();
    clock.advance(250); // past max_age and the cooldown again
    await expect(ks.getKey(header(kid), token)).resolves.toBeDefined();
    await waitFor(() => events.at(-1) === 'refresh_failed', { what: 'a refresh_failed event' });
    await s.start();
  });

  it('discovery: jwks_uri from the issuer document, fetched once', async () => {
    const s = await startIdp();
    servers.push(s);
    const ks = source({ issuer: s.issuer, cooldownMs: 0 });
    await ks.getKey(header(s.key('ES256').kid), token);
    await ks.getKey(header('unknown'), token).catch(() => undefined);
    expect(s.fetches).toEqual({ discovery: 1, jwks: 2 });
  });

  const unavailable = async (ks: RemoteKeySource) => {
    const err = await ks.getKey(header('k'), token).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_ERR_DEPENDENCY_UNAVAILABLE');
  };

  it('no keys ever → GW_ERR_DEPENDENCY_UNAVAILABLE, for every kind of bad answer', async () => {
    const s = await serve((path, res) => {
      const issuer = `http://127.0.0.1:${(res.socket?.localPort as number) ?? 0}`;
      if (path === '/mismatch/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer: 'https://other', jwks_uri: `${issuer}/jwks` }));
      if (path === '/nojwks/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer: `${issuer}/nojwks` }));
      if (path === '/remote/.well-known/openid-configuration')
        return res.end(JSON.stringify({ issuer: `${issuer}/remote`, jwks_uri: 'http://198.51.100.7/jwks' }));
      if (path === '/500') return res.writeHead(500).end('no');
      if (path === '/notjson') return res.end('<html>');
      if (path === '/nokeys') return res.end('{"keys": "x"}');
      if (path === '/redirect') return res.writeHead(302, { location: `${issuer}/jwks` }).end();
      if (path === '/huge') {
        const body = JSON.stringify({ keys: [], pad: 'x'.repeat(600 * 1024) });
        return res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
      }
      if (path === '/huge-chunked') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"keys": [], "pad": "');
        for (let i = 0; i < 700; i++) res.write('x'.repeat(1024));
        return res.end('"}');
      }
      res.writeHead(404).end();
    });
    for (const p of ['/mismatch', '/nojwks', '/remote']) await unavailable(source({ issuer: `${s.url}${p}` }));
    for (const p of ['/500', '/notjson', '/nokeys', '/redirect', '/huge', '/huge-chunked']) {
      await unavailable(source({ issuer: s.url, jwksUri: `${s.url}${p}` }));
    }
    // /remote: the discovered non-loopback http jwks_uri is refused, never fetched
    expect(s.hits.filter((h) => h === '/jwks')).toEqual([]);
  });

  it('discovery may not point the JWKS at plain http off loopback (127.0.0.2 is not on the loopback list)', async () => {
    // 127.0.0.2 reaches this machine, so without the check the (empty) set would be fetched and used.
    const offList = http.createServer((_rq, res) => res.end('{"keys": []}'));
    await new Promise<void>((r) => offList.listen(0, '127.0.0.2', r));
    let hits = 0;
    offList.on('request', () => hits++);
    servers.push({ close: () => new Promise<void>((r) => offList.close(() => r())) });
    const jwksUri = `http://127.0.0.2:${(offList.address() as AddressInfo).port}/jwks`;
    const s = await serve((_path, res) => {
      res.end(JSON.stringify({ issuer: `http://127.0.0.1:${res.socket?.localPort}`, jwks_uri: jwksUri }));
    });
    await unavailable(source({ issuer: s.url }));
    expect(hits).toBe(0);
  });

  it('a timeout is a failure, bounded by jwks.timeout', async () => {
    const s = await serve(() => undefined); // never answers
    const t0 = Date.now();
    await unavailable(source({ issuer: s.url, jwksUri: `${s.url}/jwks`, timeoutMs: 200 }));
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});

describe('buildAuthenticator (provider config checks)', () => {
  const build = (provider: Record<string, unknown>) => {
    const cfg = configSchema.parse({
      listen: { address: '127.0.0.1:0', plaintext: true },
      identity_providers: { p: { type: 'jwt', audiences: ['gw'], ...provider } },
    }).identity_providers.p!;
    return () => buildAuthenticator('p', cfg, { baseDir: '/', clientCaConfigured: false, onEvent: () => undefined });
  };

  it('JWKS and discovery URLs must be https, plain http only on loopback', () => {
    expect(build({ issuer: 'https://idp.example', jwks_uri: 'https://idp.example/jwks' })).not.toThrow();
    expect(build({ issuer: 'https://idp.example' })).not.toThrow();
    expect(build({ issuer: 'http://127.0.0.1:9', jwks_uri: 'http://127.0.0.1:9/jwks' })).not.toThrow();
    expect(build({ issuer: 'https://idp.example', jwks_uri: 'http://idp.example/jwks' })).toThrow(/https/);
    expect(build({ issuer: 'http://idp.example' })).toThrow(/https/);
    expect(build({ issuer: 'https://idp.example', jwks_uri: 'not a url' })).toThrow(/valid URL/);
  });

  it('HS* only with a secret, and a secret only with HS*', () => {
    expect(build({ issuer: 'https://i', algorithms: ['HS256'] })).toThrow(/secret/);
    expect(build({ issuer: 'https://i', algorithms: ['ES256', 'HS256'], secret: SECRET })).toThrow(/HS256/);
    expect(build({ issuer: 'https://i', secret: SECRET })).toThrow(/HS256/); // default algorithms are asymmetric
    expect(build({ issuer: 'http://anything', algorithms: ['HS256'], secret: SECRET })).not.toThrow();
  });

  it('the default allowlist is ES256, RS256, EdDSA', () => {
    const cfg = configSchema.parse({
      listen: { address: '127.0.0.1:0', plaintext: true },
      identity_providers: { p: { type: 'jwt', issuer: 'https://i', audiences: ['gw'] } },
    }).identity_providers.p as { algorithms: string[]; clock_tolerance: number };
    expect(cfg.algorithms).toEqual(['ES256', 'RS256', 'EdDSA']);
    expect(cfg.clock_tolerance).toBe(30_000);
  });
});
