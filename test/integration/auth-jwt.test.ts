// JWT bearer authentication end to end: real IdPs (JWKS + discovery on loopback), a real gateway, a real
// upstream. Every refusal is checked on the wire (status, problem code, WWW-Authenticate) and at the
// upstream (nothing arrived); every success by what the upstream received.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, generateKeyPair, exportJWK, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { closedPort, craftJwt, hs256WithPublicKey, signRaw, startIdp, type TestIdp } from '../helpers/idp.ts';
import { rawRequest } from '../helpers/raw.ts';
import { headerNames, startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';
import { sleep, testClock, waitFor } from '../helpers/wait.ts';

const API_KEY = 'ztk_integration-test-key-0123456789';
/** The gateway's clock for JWKS cooldowns and max_age: advanced instead of sleeping through them. */
const clock = testClock();

let upstream: Upstream;
let gw: TestGateway;
let main: TestIdp; // ES256 + RS256 + EdDSA; also backs the roles/trusting/short providers
let disc: TestIdp; // discovery only
let rot: TestIdp; // unknown kid, cooldown, rotation
let cold: TestIdp; // never fetched by anything that is refused before verification
let down: TestIdp; // outage after keys were cached
let flaky: TestIdp; // answers badly from the start
let second: TestIdp; // a second issuer
let deadPort: number;
const issued = new Set<string>(); // every token sent, to check the logs never contain one

interface Call {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  problem: { code: string; status: number; detail: string } | undefined;
  challenges: string[];
  forwarded: Received[];
}

async function call(path: string, opts: { token?: string; authorization?: string; headers?: Record<string, string> } = {}): Promise<Call> {
  const before = upstream.received.length;
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) {
    issued.add(opts.token);
    headers.authorization = `Bearer ${opts.token}`;
  }
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  const res = await request(`${gw.url}${path}`, { headers });
  const text = await res.body.text();
  const type = String(res.headers['content-type'] ?? '');
  const www = res.headers['www-authenticate'];
  return {
    status: res.statusCode,
    headers: res.headers,
    problem: type.includes('problem+json') ? (JSON.parse(text) as Call['problem']) : undefined,
    challenges: www === undefined ? [] : Array.isArray(www) ? www : [www],
    forwarded: upstream.received.slice(before),
  };
}

/** A refusal: status + code on the wire, nothing at the upstream. */
function refused(r: Call, status: number, code: string): void {
  expect({ status: r.status, code: r.problem?.code, forwarded: r.forwarded.length }).toEqual({ status, code, forwarded: 0 });
}

/** A 401 for presented-but-bad credentials: RFC 6750 error="invalid_token" on the Bearer challenge. */
function invalidToken(r: Call): void {
  refused(r, 401, 'GW_ERR_UNAUTHENTICATED');
  expect(r.challenges).toHaveLength(1);
  expect(r.challenges[0]).toMatch(/^Bearer realm="zt-gateway", error="invalid_token", error_description="[^"]*"$/);
}

/** A success: exactly one forwarded request carrying verified identity and no client credentials. */
function accepted(r: Call, subject: string, method = 'jwt'): Received {
  expect({ status: r.status, code: r.problem?.code, forwarded: r.forwarded.length }).toEqual({ status: 200, code: undefined, forwarded: 1 });
  const rec = r.forwarded[0] as Received;
  expect(rec.headers['x-zt-user']).toBe(subject);
  expect(rec.headers['x-zt-auth-method']).toBe(method);
  expect(headerNames(rec).filter((n) => n === 'x-zt-user')).toHaveLength(1);
  expect(rec.headers.authorization).toBeUndefined();
  expect(typeof rec.headers['x-zt-assertion']).toBe('string');
  return rec;
}

function jwtProvider(idp: TestIdp, extra = ''): string {
  return `{ type: jwt, issuer: "${idp.issuer}", audiences: [gw], jwks_uri: "${idp.jwksUri}", jwks: { cooldown: 1s }${extra} }`;
}

function route(name: string, providers: string[], extra = ''): string {
  return `  - name: ${name}
    match: { path: /${name} }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [${providers.join(', ')}]
    authorize: { allow: [{ authenticated: true }] }
${extra}`;
}

beforeAll(async () => {
  [upstream, main, disc, rot, cold, down, flaky, second, deadPort] = await Promise.all([
    startUpstream(),
    startIdp({ algs: ['ES256', 'RS256', 'EdDSA'] }),
    startIdp({ algs: ['EdDSA'] }),
    startIdp({ algs: ['ES256'] }),
    startIdp({ algs: ['ES256', 'RS256'] }),
    startIdp({ algs: ['ES256'] }),
    startIdp({ algs: ['ES256'] }),
    startIdp({ algs: ['ES256'] }),
    closedPort(),
  ]);
  flaky.mode = 500;
  const keysFile = `keys:\n  - { id: ci, hash: ${createHash('sha256').update(API_KEY).digest('hex')}, subject: svc-ci, groups: [deployers] }\n`;
  const yaml = `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_providers:
  main: ${jwtProvider(main)}
  disc: { type: jwt, issuer: "${disc.issuer}", audiences: [gw] }
  rot: ${jwtProvider(rot)}
  cold: ${jwtProvider(cold)}
  down: { type: jwt, issuer: "${down.issuer}", audiences: [gw], jwks_uri: "${down.jwksUri}", jwks: { cooldown: 1s, max_age: 1s } }
  dead: { type: jwt, issuer: "http://127.0.0.1:${deadPort}", audiences: [gw], jwks_uri: "http://127.0.0.1:${deadPort}/jwks.json", jwks: { cooldown: 1s, timeout: 1s } }
  flaky: { type: jwt, issuer: "${flaky.issuer}", audiences: [gw], jwks_uri: "${flaky.jwksUri}", jwks: { cooldown: 500ms, timeout: 300ms } }
  second: ${jwtProvider(second)}
  roles: ${jwtProvider(main, ', claims: { groups: roles }')}
  trusting: ${jwtProvider(main, ', trust_email: true')}
  short: ${jwtProvider(main, ', clock_tolerance: 0s')}
  keys: { type: api_key, keys_file: api-keys.yaml }
routes:
${route('api', ['main'])}
${route('pass', ['main'], '    identity_headers: { pass_token: true }\n')}
${route('disc', ['disc'])}
${route('rot', ['rot'])}
${route('cold', ['cold'])}
${route('down', ['down'])}
${route('dead', ['dead'])}
${route('flaky', ['flaky'])}
${route('second', ['second'])}
${route('both', ['main', 'second'])}
${route('mixed', ['main', 'keys'])}
${route('roles', ['roles'])}
${route('trusting', ['trusting'])}
${route('short', ['short'])}
`;
  gw = await startGateway(yaml, { files: { 'api-keys.yaml': keysFile }, now: clock.now });
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([upstream, main, disc, rot, cold, down, flaky, second].map((s) => s?.close()));
});

describe('valid tokens', () => {
  it.each(['ES256', 'RS256', 'EdDSA'] as const)('accepts %s and forwards the verified subject', async (alg) => {
    const token = await main.sign({ groups: ['eng', 'ops'] }, { key: main.key(alg), sub: `user-${alg}` });
    const rec = accepted(await call('/api/x', { token }), `user-${alg}`);
    expect(rec.headers['x-zt-groups']).toBe('eng,ops');
    expect(rec.headers['x-zt-email']).toBeUndefined();
  });

  it('finds the JWKS through the issuer discovery document when jwks_uri is absent', async () => {
    accepted(await call('/disc', { token: await disc.sign({}, { sub: 'dora' }) }), 'dora');
    expect(disc.fetches).toEqual({ discovery: 1, jwks: 1 });
    accepted(await call('/disc', { token: await disc.sign({}, { sub: 'dora' }) }), 'dora');
    expect(disc.fetches).toEqual({ discovery: 1, jwks: 1 }); // keys cached, discovery not repeated
  });

  it('accepts the scheme case-insensitively', async () => {
    const token = await main.sign();
    issued.add(token);
    accepted(await call('/api', { authorization: `bEaReR ${token}` }), 'alice');
  });

  it('never forwards client-supplied identity headers, only verified ones', async () => {
    const token = await main.sign({}, { sub: 'alice' });
    const rec = accepted(
      await call('/api', { token, headers: { 'x-zt-user': 'mallory', 'x-zt-groups': 'admins', x_zt_email: 'm@evil.example' } }),
      'alice',
    );
    expect(rec.headers['x-zt-groups']).toBeUndefined();
    expect(rec.headers['x-zt-email']).toBeUndefined();
    expect(headerNames(rec).filter((n) => n.replaceAll('_', '-').startsWith('x-zt-')).sort()).toEqual([
      'x-zt-assertion',
      'x-zt-auth-method',
      'x-zt-user',
    ]);
  });

  it('passes the bearer token upstream only on a route with pass_token: true', async () => {
    const token = await main.sign();
    const r = await call('/pass', { token });
    expect(r.status).toBe(200);
    expect(r.forwarded[0]?.headers.authorization).toBe(`Bearer ${token}`);
    expect(r.forwarded[0]?.headers['x-zt-user']).toBe('alice');
    accepted(await call('/api', { token }), 'alice'); // same token, default route: no Authorization
  });
});

describe('invalid tokens are refused with 401 invalid_token', () => {
  it('expired beyond the clock tolerance', async () => {
    const r = await call('/api', { token: await main.sign({}, { expIn: -120, iatIn: -600 }) });
    invalidToken(r);
    expect(r.challenges[0]).toContain('expired');
  });

  it('not yet valid: nbf beyond the tolerance → 401, within the tolerance (30s default) → 200', async () => {
    invalidToken(await call('/api', { token: await main.sign({}, { nbfIn: 120 }) }));
    accepted(await call('/api', { token: await main.sign({}, { nbfIn: 10 }) }), 'alice');
  });

  it('issued in the future beyond the tolerance (iat)', async () => {
    invalidToken(await call('/api', { token: await main.sign({}, { iatIn: 3600, expIn: 7200 }) }));
    accepted(await call('/api', { token: await main.sign({}, { iatIn: 10 }) }), 'alice');
  });

  it('wrong issuer, missing issuer', async () => {
    invalidToken(await call('/api', { token: await main.sign({}, { iss: 'http://127.0.0.1:1' }) }));
    invalidToken(await call('/api', { token: await main.sign({}, { iss: `${main.issuer}/` }) }));
    invalidToken(await call('/api', { token: await main.sign({}, { iss: null }) }));
  });

  it('wrong audience, missing audience; any listed audience is enough', async () => {
    invalidToken(await call('/api', { token: await main.sign({}, { aud: 'other' }) }));
    invalidToken(await call('/api', { token: await main.sign({}, { aud: null }) }));
    accepted(await call('/api', { token: await main.sign({}, { aud: ['other', 'gw'] }) }), 'alice');
  });

  it('missing exp, missing sub', async () => {
    invalidToken(await call('/api', { token: await main.sign({}, { expIn: null }) }));
    invalidToken(await call('/api', { token: await main.sign({}, { sub: null }) }));
  });

  it('a valid signature from a key the issuer never published', async () => {
    const stranger = await main.generateKey('ES256', main.key('ES256').kid); // same kid, different key
    invalidToken(await call('/api', { token: await main.sign({}, { key: stranger }) }));
  });
});

describe('hostile tokens are refused before any key lookup', () => {
  // The `cold` IdP serves keys that are valid for its route; none of these may make the gateway fetch them.
  const noFetch = () => expect(cold.fetches.jwks + cold.fetches.discovery).toBe(0);
  const payload = () => ({ iss: cold.issuer, aud: 'gw', sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 300 });

  it('alg none (unsigned, crafted by hand) in any spelling', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      invalidToken(await call('/cold', { token: craftJwt({ alg, typ: 'JWT' }, payload()) }));
      invalidToken(await call('/cold', { token: craftJwt({ alg, typ: 'JWT', kid: cold.key('ES256').kid }, payload(), 'c2ln') }));
    }
    noFetch();
  });

  it('HS256 signed with the issuer public key as the HMAC secret (algorithm confusion)', async () => {
    for (const alg of ['ES256', 'RS256'] as const) {
      const r = await call('/cold', { token: await hs256WithPublicKey(cold.key(alg), payload()) });
      invalidToken(r);
      expect(r.challenges[0]).toContain('algorithm not allowed');
    }
    noFetch();
  });

  it('an embedded jwk header with the attacker own key', async () => {
    const attacker = await generateKeyPair('ES256');
    const jwk = await exportJWK(attacker.publicKey);
    const token = await new SignJWT(payload()).setProtectedHeader({ alg: 'ES256', jwk }).sign(attacker.privateKey);
    invalidToken(await call('/cold', { token }));
    const withKid = await new SignJWT(payload())
      .setProtectedHeader({ alg: 'ES256', kid: cold.key('ES256').kid, jwk })
      .sign(attacker.privateKey);
    invalidToken(await call('/cold', { token: withKid }));
    noFetch();
  });

  it('jku / x5u / x5c headers, even on a token signed with the real key', async () => {
    for (const header of [{ jku: 'http://127.0.0.1:1/evil.json' }, { x5u: 'http://127.0.0.1:1/evil.pem' }, { x5c: ['MIIB'] }]) {
      const r = await call('/cold', { token: await cold.sign({}, { header }) });
      invalidToken(r);
      expect(r.challenges[0]).toContain('not accepted');
    }
    noFetch();
  });

  it('an unknown critical header', async () => {
    const key = cold.key('ES256');
    const token = await signRaw(key, { alg: 'ES256', kid: key.kid, crit: ['zt'], zt: 1 }, payload());
    invalidToken(await call('/cold', { token }));
    noFetch();
  });

  it('a 9 KB token, validly signed', async () => {
    const token = await cold.sign({ pad: 'x'.repeat(9 * 1024) });
    expect(token.length).toBeGreaterThan(9000);
    const r = await call('/cold', { token });
    invalidToken(r);
    expect(r.challenges[0]).toContain('too large');
    noFetch();
  });

  it('garbage and JWE-looking tokens', async () => {
    const jwe = `${Buffer.from('{"alg":"RSA-OAEP","enc":"A256GCM"}').toString('base64url')}.a.b.c.d`;
    for (const token of ['garbage', 'a.b.c', '..', 'e30.e30.', `${craftJwt({ alg: 'ES256' }, payload())}.x`, jwe, 'a.b.c.d.e', 'ey!.ey.x']) {
      invalidToken(await call('/cold', { token }));
    }
    const empty = await call('/cold', { authorization: 'Bearer ' });
    refused(empty, 401, 'GW_ERR_UNAUTHENTICATED');
    noFetch();
  });

  it('a good token on the same route afterwards is verified (one JWKS fetch)', async () => {
    accepted(await call('/cold', { token: await cold.sign({}, { key: cold.key('RS256'), sub: 'carol' }) }), 'carol');
    expect(cold.fetches).toEqual({ jwks: 1, discovery: 0 });
  });
});

describe('JWKS refresh', () => {
  it('unknown kid: one refetch, none within the cooldown; a key added later is picked up after it', async () => {
    const k1 = rot.key('ES256');
    const k2 = await rot.generateKey('RS256');
    accepted(await call('/rot', { token: await rot.sign({}, { key: k1 }) }), 'alice');
    expect(rot.fetches.jwks).toBe(1); // initial load
    clock.advance(1100); // past the cooldown of the initial load

    rot.resetCounts();
    const unpublished = await rot.generateKey('ES256');
    const r = await call('/rot', { token: await rot.sign({}, { key: unpublished }) });
    invalidToken(r);
    expect(r.challenges[0]).toContain('unknown');
    expect(rot.fetches.jwks).toBe(1); // exactly one refetch for the unknown kid

    // A storm of unknown kids within the cooldown: no more fetches.
    const storm = await Promise.all(
      Array.from({ length: 8 }, async () => call('/rot', { token: await rot.sign({}, { key: unpublished, kid: `k-${Math.random()}` }) })),
    );
    for (const s of storm) invalidToken(s);
    expect(rot.fetches.jwks).toBe(1);

    // Rotated in now: still refused within the cooldown (no fetch), accepted after it.
    rot.publish(k2);
    invalidToken(await call('/rot', { token: await rot.sign({}, { key: k2 }) }));
    expect(rot.fetches.jwks).toBe(1);
    clock.advance(1100); // past the cooldown
    accepted(await call('/rot', { token: await rot.sign({}, { key: k2, sub: 'rotated' }) }), 'rotated');
    expect(rot.fetches.jwks).toBe(2);
    accepted(await call('/rot', { token: await rot.sign({}, { key: k1 }) }), 'alice'); // old key still published
    expect(rot.fetches.jwks).toBe(2);
  });

  it('a key removed from the JWKS stops working once the set is refetched', async () => {
    const k1 = rot.key('ES256');
    rot.unpublish(k1.kid);
    clock.advance(1100); // past the cooldown
    const trigger = await rot.generateKey('ES256');
    invalidToken(await call('/rot', { token: await rot.sign({}, { key: trigger }) })); // unknown kid → refetch
    expect(rot.fetches.jwks).toBe(3);
    invalidToken(await call('/rot', { token: await rot.sign({}, { key: k1 }) }));
    rot.publish(k1);
  });

  it('IdP down after keys were cached: cached keys keep verifying, also past max_age', async () => {
    accepted(await call('/down', { token: await down.sign({}, { sub: 'dan' }) }), 'dan');
    expect(down.fetches.jwks).toBe(1);
    await down.stop();
    accepted(await call('/down', { token: await down.sign({}, { sub: 'dan' }) }), 'dan');
    clock.advance(1100); // past max_age (1s) and the cooldown: background refreshes fail, stale keys stay
    for (let i = 0; i < 3; i++) accepted(await call('/down', { token: await down.sign({}, { sub: 'dan' }) }), 'dan');
    // An unknown kid while down: refused as a bad token (401), not as an outage.
    invalidToken(await call('/down', { token: await down.sign({}, { key: await down.generateKey('ES256') }) }));
    expect(gw.logs.some((l) => l.event === 'jwks_refresh_failed' && l.provider === 'down' && l.level === 'warn')).toBe(true);

    await down.start();
    clock.advance(1100); // past the cooldown
    accepted(await call('/down', { token: await down.sign({}, { sub: 'dan' }) }), 'dan');
    await waitFor(() => down.fetches.jwks === 2, { what: 'the background JWKS refresh of "down"' }); // the background refresh completes after the answer
  });

  it('a provider whose JWKS was never reachable answers 503 (not 500) and the gateway keeps serving', async () => {
    // nothing listens on deadPort; the token is signed by some key claiming that issuer
    const token = await main.sign({}, { iss: `http://127.0.0.1:${deadPort}` });
    for (let i = 0; i < 3; i++) refused(await call('/dead', { token }), 503, 'GW_ERR_DEPENDENCY_UNAVAILABLE');
    accepted(await call('/api', { token: await main.sign() }), 'alice');
    expect(gw.logs.some((l) => l.event === 'jwks_refresh_failed' && l.provider === 'dead')).toBe(true);
    // bad tokens on that route are still just bad tokens
    invalidToken(await call('/dead', { token: craftJwt({ alg: 'none' }, {}) }));
  });

  it('an IdP that errors, sends garbage or hangs → 503, one attempt per cooldown; recovers', async () => {
    const token = () => flaky.sign({}, { sub: 'fay' });
    refused(await call('/flaky', { token: await token() }), 503, 'GW_ERR_DEPENDENCY_UNAVAILABLE');
    refused(await call('/flaky', { token: await token() }), 503, 'GW_ERR_DEPENDENCY_UNAVAILABLE');
    expect(flaky.fetches.jwks).toBe(1); // the second request fell in the cooldown
    flaky.mode = 'garbage';
    clock.advance(600); // past the 500ms cooldown
    refused(await call('/flaky', { token: await token() }), 503, 'GW_ERR_DEPENDENCY_UNAVAILABLE');
    flaky.mode = 'hang';
    clock.advance(600); // past the 500ms cooldown
    const t0 = Date.now();
    refused(await call('/flaky', { token: await token() }), 503, 'GW_ERR_DEPENDENCY_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(2000); // jwks.timeout (300ms) bounds the wait
    flaky.mode = 'ok';
    clock.advance(600); // past the 500ms cooldown
    accepted(await call('/flaky', { token: await token() }), 'fay');
    expect(flaky.fetches.jwks).toBe(4);
  });
});

describe('several issuers and providers', () => {
  it('two routes, each with its own issuer: tokens are accepted only where their issuer is configured', async () => {
    accepted(await call('/api', { token: await main.sign({}, { sub: 'from-main' }) }), 'from-main');
    accepted(await call('/second', { token: await second.sign({}, { sub: 'from-second' }) }), 'from-second');
    invalidToken(await call('/api', { token: await second.sign({}, { sub: 'from-second' }) }));
    invalidToken(await call('/second', { token: await main.sign({}, { sub: 'from-main' }) }));
    // a token already verified (and cached) for one provider is not accepted by another
    const cached = await main.sign({}, { sub: 'cached' });
    accepted(await call('/api', { token: cached }), 'cached');
    invalidToken(await call('/second', { token: cached }));
  });

  it('[main, second] on one route: the token\'s issuer picks the provider that verifies it', async () => {
    accepted(await call('/both', { token: await main.sign({}, { sub: 'm' }) }), 'm');
    accepted(await call('/both', { token: await second.sign({}, { sub: 's' }) }), 's');
    // The unverified iss only routes the token: a token claiming second's issuer but signed by main's key
    // is verified by second and refused.
    invalidToken(await call('/both', { token: await main.sign({}, { sub: 'forged', iss: second.issuer }) }));
  });

  it('[jwt, api_key]: an ApiKey credential reaches the api_key provider; a Bearer token the jwt one', async () => {
    const key = await call('/mixed', { authorization: `ApiKey ${API_KEY}` });
    const rec = accepted(key, 'svc-ci', 'api_key');
    expect(rec.headers['x-zt-groups']).toBe('deployers');
    accepted(await call('/mixed', { token: await main.sign({}, { sub: 'human' }) }), 'human');

    const wrong = await call('/mixed', { authorization: 'ApiKey ztk_wrong' });
    refused(wrong, 401, 'GW_ERR_UNAUTHENTICATED');
    expect(wrong.challenges).toEqual([expect.stringMatching(/^ApiKey realm="zt-gateway", error="invalid_token"/)]);
    invalidToken(await call('/mixed', { token: 'a.b.c' }));

    const none = await call('/mixed');
    refused(none, 401, 'GW_ERR_UNAUTHENTICATED');
    expect(none.challenges).toEqual(['Bearer realm="zt-gateway"', 'ApiKey realm="zt-gateway"']);
  });
});

describe('missing or ambiguous credentials', () => {
  it('no credentials → 401 with a Bearer challenge without an error code (RFC 6750 §3.1)', async () => {
    for (const authorization of [undefined, 'Basic YWxpY2U6cHc=', 'Bearer']) {
      const r = await call('/api', authorization === undefined ? {} : { authorization });
      refused(r, 401, 'GW_ERR_UNAUTHENTICATED');
      expect(r.challenges).toEqual(['Bearer realm="zt-gateway"']);
    }
  });

  it('two Authorization headers → 400 GW_ERR_AMBIGUOUS_REQUEST', async () => {
    const before = upstream.received.length;
    const a = await main.sign({}, { sub: 'a' });
    const b = await main.sign({}, { sub: 'b' });
    issued.add(a).add(b);
    const res = await rawRequest(
      gw.port,
      `GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${a}\r\nAuthorization: Bearer ${b}\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(400);
    expect((JSON.parse(res.body) as { code: string }).code).toBe('GW_ERR_AMBIGUOUS_REQUEST');
    expect(upstream.received.length).toBe(before);
  });
});

describe('claims mapping', () => {
  it('claims.groups: roles maps the roles claim to X-ZT-Groups', async () => {
    const token = await main.sign({ roles: ['admin', 'ops,eu'], groups: ['ignored'] }, { sub: 'rita' });
    const rec = accepted(await call('/roles', { token }), 'rita');
    expect(rec.headers['x-zt-groups']).toBe('admin,ops%2Ceu');
    const single = accepted(await call('/roles', { token: await main.sign({ roles: 'solo' }) }), 'alice');
    expect(single.headers['x-zt-groups']).toBe('solo');
  });

  it('email is forwarded only when verified, or when the provider trusts it', async () => {
    const verified = accepted(await call('/api', { token: await main.sign({ email: 'a@corp.example', email_verified: true }) }), 'alice');
    expect(verified.headers['x-zt-email']).toBe('a@corp.example');
    for (const email_verified of [undefined, false, 'true']) {
      const rec = accepted(await call('/api', { token: await main.sign({ email: 'a@corp.example', email_verified }) }), 'alice');
      expect(rec.headers['x-zt-email']).toBeUndefined();
    }
    const trusted = accepted(await call('/trusting', { token: await main.sign({ email: 't@corp.example' }) }), 'alice');
    expect(trusted.headers['x-zt-email']).toBe('t@corp.example');
  });

  it('a sub (or group) with CR/LF/NUL → 400 GW_ERR_BAD_IDENTITY_VALUE, and the gateway keeps serving', async () => {
    for (const sub of ['eve\r\nX-ZT-Groups: admin', 'eve\n', 'eve\u0000', 'eve\t']) {
      const token = await main.sign({}, { sub });
      refused(await call('/api', { token }), 400, 'GW_ERR_BAD_IDENTITY_VALUE');
      refused(await call('/api', { token }), 400, 'GW_ERR_BAD_IDENTITY_VALUE'); // cached identity: same answer
    }
    refused(await call('/api', { token: await main.sign({ groups: ['ok', 'bad\r\nx'] }) }), 400, 'GW_ERR_BAD_IDENTITY_VALUE');
    accepted(await call('/api', { token: await main.sign() }), 'alice');
  });

  it('non-ASCII and % in identity values are percent-encoded (UTF-8)', async () => {
    accepted(await call('/api', { token: await main.sign({}, { sub: 'zoë' }) }), 'zo%C3%AB');
    accepted(await call('/api', { token: await main.sign({}, { sub: '100%' }) }), '100%25');
    const rec = accepted(await call('/api', { token: await main.sign({ groups: ['müller'] }, { sub: '李' }) }), '%E6%9D%8E');
    expect(rec.headers['x-zt-groups']).toBe('m%C3%BCller');
  });
});

describe('verified-token cache', () => {
  it('the same token twice is verified once: the second request reuses the identity (same assertion)', async () => {
    const token = await main.sign({}, { sub: 'cachy' });
    const first = accepted(await call('/api', { token }), 'cachy');
    const again = accepted(await call('/api', { token }), 'cachy');
    // ES256 signatures are randomised: an identical assertion means the same cached Identity object was used.
    expect(again.headers['x-zt-assertion']).toBe(first.headers['x-zt-assertion']);
    const other = accepted(await call('/api', { token: await main.sign({}, { sub: 'cachy' }) }), 'cachy');
    expect(other.headers['x-zt-assertion']).not.toBe(first.headers['x-zt-assertion']);
  });

  it('a cached entry stops working at exp (clock_tolerance 0s)', async () => {
    const token = await main.sign({}, { sub: 'brief', expIn: 2 });
    const exp = decodeJwt(token).exp as number;
    const first = accepted(await call('/short', { token }), 'brief');
    const again = accepted(await call('/short', { token }), 'brief');
    expect(again.headers['x-zt-assertion']).toBe(first.headers['x-zt-assertion']);
    expect(decodeJwt(first.headers['x-zt-assertion'] as string).exp).toBeLessThanOrEqual(exp);
    const wait = exp * 1000 + 50 - Date.now();
    expect(wait).toBeLessThan(2100);
    await sleep(Math.max(0, wait));
    const late = await call('/short', { token });
    invalidToken(late);
    expect(late.challenges[0]).toContain('expired');
  });
});

describe('X-ZT-Assertion', () => {
  it('verifies against the JWKS the gateway serves on any host, with the right iss/aud/sub/exp', async () => {
    const res = await request(`${gw.url}/.well-known/zt-gateway/jwks.json`, { headers: { host: 'anything.example' } });
    expect(res.statusCode).toBe(200);
    const jwks = (await res.body.json()) as JSONWebKeySet;
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const k of jwks.keys) expect(k).not.toHaveProperty('d');
    const keySet = createLocalJWKSet(jwks);

    const token = await main.sign({ groups: ['eng'], email: 'al@corp.example', email_verified: true }, { sub: 'al', expIn: 600 });
    const rec = accepted(await call('/api', { token }), 'al');
    const assertion = rec.headers['x-zt-assertion'] as string;
    const { payload, protectedHeader } = await jwtVerify(assertion, keySet, {
      issuer: 'zt-gateway',
      audience: upstream.url,
      algorithms: ['ES256'],
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.aud).toBe(`http://127.0.0.1:${upstream.port}`);
    expect(payload.sub).toBe('al');
    expect(payload.email).toBe('al@corp.example');
    expect(payload.groups).toEqual(['eng']);
    expect((payload.exp as number) - (payload.iat as number)).toBeLessThanOrEqual(60);
    expect(payload.exp as number).toBeLessThanOrEqual(decodeJwt(token).exp as number);
    await expect(jwtVerify(assertion, keySet, { issuer: 'zt-gateway', audience: 'http://127.0.0.1:1' })).rejects.toThrow();

    // A token that expires sooner than the assertion TTL caps the assertion's exp.
    const soon = await main.sign({}, { sub: 'al', expIn: 5 });
    const rec2 = accepted(await call('/api', { token: soon }), 'al');
    const p2 = (await jwtVerify(rec2.headers['x-zt-assertion'] as string, keySet, { issuer: 'zt-gateway', audience: upstream.url })).payload;
    expect(p2.exp).toBeLessThanOrEqual(decodeJwt(soon).exp as number);
  });
});

describe('logs', () => {
  it('never contain a token', () => {
    const text = JSON.stringify(gw.logs);
    for (const token of issued) {
      expect(text.includes(token)).toBe(false);
      const signature = token.split('.')[2];
      if (signature && signature.length > 16) expect(text.includes(signature)).toBe(false);
    }
  });
});
