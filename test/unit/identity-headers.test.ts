// Identity header values (encoding, refusal of control characters), the header set, and the signed assertion.
import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../src/core/identity.ts';
import { createAssertionSigner, generatedAssertionKey, loadAssertionKey } from '../../src/proxy/assertion.ts';
import { appendIdentityHeaders, defaultHeaderNames, encodeHeaderValue } from '../../src/proxy/identity-headers.ts';
import { GatewayError } from '../../src/core/errors.ts';

function identity(over: Partial<Identity> = {}): Identity {
  return Object.freeze({
    subject: 'alice',
    provider: 'corp',
    issuer: 'https://idp.example.com',
    method: 'jwt',
    email: 'alice@example.com',
    emailVerified: true,
    groups: ['eng', 'ops'],
    claims: {},
    spiffeId: undefined,
    authTime: undefined,
    amr: ['pwd', 'mfa'],
    acr: undefined,
    expiresAt: undefined,
    ...over,
  });
}

describe('encodeHeaderValue', () => {
  it('leaves printable ASCII alone', () => {
    const ascii = 'Alice Smith <alice@example.com> (a,b;c=d) "q" ~!$&\'*+-./:?[]^_`{|}';
    expect(encodeHeaderValue(ascii)).toBe(ascii);
  });

  it('percent-encodes non-ASCII as UTF-8, and "%" itself', () => {
    expect(encodeHeaderValue('jürgen')).toBe('j%C3%BCrgen');
    expect(encodeHeaderValue('例え')).toBe('%E4%BE%8B%E3%81%88');
    expect(encodeHeaderValue('😀')).toBe('%F0%9F%98%80');
    expect(encodeHeaderValue('100%')).toBe('100%25');
    expect(encodeHeaderValue('%C3%BC')).toBe('%25C3%25BC'); // already-encoded text is not mistaken for encoding
    expect(encodeHeaderValue('\u0085\u00a0')).toBe('%C2%85%C2%A0'); // C1 control and NBSP: non-ASCII
  });

  it('decodes back to the original with decodeURIComponent', () => {
    for (const v of ['jürgen 100%', 'a,b', 'Ωmega/北京', 'x%y']) expect(decodeURIComponent(encodeHeaderValue(v, true))).toBe(v);
  });

  it('encodes "," only inside a list item', () => {
    expect(encodeHeaderValue('a,b')).toBe('a,b');
    expect(encodeHeaderValue('a,b', true)).toBe('a%2Cb');
    expect(encodeHeaderValue('ü,x', true)).toBe('%C3%BC%2Cx');
  });

  it.each([
    ['NUL', 'a\0b'],
    ['CR', 'a\rb'],
    ['LF', 'a\nb'],
    ['CRLF injection', 'alice\r\nX-ZT-User: admin'],
    ['tab', 'a\tb'],
    ['ESC', 'a\x1bb'],
    ['DEL', 'a\x7fb'],
    ['unit separator', '\x1f'],
  ])('refuses %s with 400 GW_ERR_BAD_IDENTITY_VALUE', (_what, value) => {
    for (const inList of [false, true]) {
      let err: unknown;
      try {
        encodeHeaderValue(value, inList);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe('GW_ERR_BAD_IDENTITY_VALUE');
      expect((err as GatewayError).status).toBe(400);
      expect((err as GatewayError).detail).not.toContain(value);
    }
  });
});

describe('identity header names and values', () => {
  it('default names come from the prefix', () => {
    expect(defaultHeaderNames('X-ZT-')).toEqual({
      user: 'X-ZT-User',
      email: 'X-ZT-Email',
      groups: 'X-ZT-Groups',
      groupsTruncated: 'X-ZT-Groups-Truncated',
      method: 'X-ZT-Auth-Method',
      spiffeId: 'X-ZT-Spiffe-Id',
      assertion: 'X-ZT-Assertion',
    });
    expect(defaultHeaderNames('X-Auth-').user).toBe('X-Auth-User');
  });

  it('appends user, method, verified email, groups (comma-joined, items encoded) and the SPIFFE ID', () => {
    const headers = ['accept', '*/*'];
    appendIdentityHeaders(headers, identity({ groups: ['eng', 'a,b', 'Ü'], spiffeId: 'spiffe://example.org/x' }), defaultHeaderNames('X-ZT-'));
    expect(headers).toEqual([
      'accept', '*/*',
      'X-ZT-User', 'alice',
      'X-ZT-Auth-Method', 'jwt',
      'X-ZT-Email', 'alice@example.com',
      'X-ZT-Groups', 'eng,a%2Cb,%C3%9C',
      'X-ZT-Spiffe-Id', 'spiffe://example.org/x',
    ]);
  });

  it('leaves out an unverified email, empty groups and an absent SPIFFE ID', () => {
    const headers: string[] = [];
    appendIdentityHeaders(headers, identity({ emailVerified: false, groups: [] }), defaultHeaderNames('X-ZT-'));
    expect(headers).toEqual(['X-ZT-User', 'alice', 'X-ZT-Auth-Method', 'jwt']);
  });

  it('uses custom names', () => {
    const headers: string[] = [];
    const names = { ...defaultHeaderNames('X-ZT-'), user: 'X-Remote-User', groups: 'X-Remote-Groups' };
    appendIdentityHeaders(headers, identity({ emailVerified: false }), names);
    expect(headers).toEqual(['X-Remote-User', 'alice', 'X-ZT-Auth-Method', 'jwt', 'X-Remote-Groups', 'eng,ops']);
  });

  it.each([
    ['subject', { subject: 'alice\r\nX-ZT-Groups: admin' }],
    ['email', { email: 'a@b\n.com' }],
    ['a group', { groups: ['eng', 'ad\0min'] }],
    ['the SPIFFE ID', { spiffeId: 'spiffe://x/\t' }],
  ])('a control character in %s refuses the request', (_what, over) => {
    expect(() => appendIdentityHeaders([], identity(over as Partial<Identity>), defaultHeaderNames('X-ZT-'))).toThrow(
      expect.objectContaining({ code: 'GW_ERR_BAD_IDENTITY_VALUE' }),
    );
  });
});

describe('the assertion signer', () => {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const key = loadAssertionKey(pem);

  it('publishes one ES256 public key whose kid is its RFC 7638 thumbprint', async () => {
    const signer = createAssertionSigner(key, 'zt-gateway', 30);
    expect(signer.jwks.keys).toHaveLength(1);
    const jwk = signer.jwks.keys[0]!;
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: signer.kid });
    expect(jwk.d).toBeUndefined();
    expect(await calculateJwkThumbprint({ kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y })).toBe(signer.kid);
    // The same key gives the same kid (stable across reloads); another key a different one.
    expect(createAssertionSigner(loadAssertionKey(pem), 'zt-gateway', 30).kid).toBe(signer.kid);
    expect(createAssertionSigner(generatedAssertionKey(), 'zt-gateway', 30).kid).not.toBe(signer.kid);
    expect(generatedAssertionKey()).toBe(generatedAssertionKey());
  });

  it('signs a token that verifies against its JWKS with iss, aud, sub, claims and a short lifetime', async () => {
    const signer = createAssertionSigner(key, 'https://gw.example.test', 30);
    const id = identity({ spiffeId: undefined, acr: 'mfa' });
    const token = await signer.sign(id, 'http://10.0.3.7:8080');
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid: signer.kid, typ: 'JWT' });
    const { payload } = await jwtVerify(token, createLocalJWKSet(signer.jwks), {
      issuer: 'https://gw.example.test',
      audience: 'http://10.0.3.7:8080',
      algorithms: ['ES256'],
    });
    expect(payload).toMatchObject({
      sub: 'alice',
      email: 'alice@example.com',
      email_verified: true,
      groups: ['eng', 'ops'],
      amr: ['pwd', 'mfa'],
      acr: 'mfa',
      auth_method: 'jwt',
      idp: 'corp',
    });
    expect(payload.spiffe_id).toBeUndefined();
    expect(payload.exp! - payload.iat!).toBe(30);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
    await expect(jwtVerify(token, createLocalJWKSet(signer.jwks), { audience: 'http://other:8080' })).rejects.toThrow();
  });

  it('reuses a token for the same identity and audience, and signs another per audience', async () => {
    const signer = createAssertionSigner(key, 'zt-gateway', 30);
    const id = identity();
    const first = await signer.sign(id, 'http://a:1');
    expect(signer.sign(id, 'http://a:1')).toBe(first); // synchronous cache hit
    const other = await signer.sign(id, 'http://b:2');
    expect(other).not.toBe(first);
    const { payload } = await jwtVerify(other, createLocalJWKSet(signer.jwks), { audience: 'http://b:2' });
    expect(payload.aud).toBe('http://b:2');
  });

  it('never outlives the identity it vouches for', async () => {
    const signer = createAssertionSigner(key, 'zt-gateway', 60);
    const expiresAt = Math.floor(Date.now() / 1000) + 10;
    const token = await signer.sign(identity({ expiresAt }), 'http://a:1');
    const { payload } = await jwtVerify(token, createLocalJWKSet(signer.jwks), { audience: 'http://a:1' });
    expect(payload.exp).toBe(expiresAt);
  });

  it('loadAssertionKey accepts only an EC P-256 private key', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    for (const bad of [p384, rsa, ed]) expect(() => loadAssertionKey(bad)).toThrow(/EC P-256 private key/);
    const pub = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
    expect(() => loadAssertionKey(pub)).toThrow();
  });
});
