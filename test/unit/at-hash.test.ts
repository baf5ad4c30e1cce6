// OIDC Core 3.1.3.6: at_hash is the left half of the access token's hash, with the ID token's algorithm.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkAtHash } from '../../src/authn/oidc/client.ts';

const header = (alg: string) => `${Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url')}.e30.sig`;
const half = (hash: string, token: string) => {
  const d = createHash(hash).update(token).digest();
  return d.subarray(0, d.length / 2).toString('base64url');
};

describe('checkAtHash', () => {
  it('accepts the hash of the access token for SHA-256, SHA-384 and SHA-512 algorithms', () => {
    expect(() => checkAtHash(header('RS256'), { at_hash: half('sha256', 'at-1') }, 'at-1')).not.toThrow();
    expect(() => checkAtHash(header('ES384'), { at_hash: half('sha384', 'at-2') }, 'at-2')).not.toThrow();
    expect(() => checkAtHash(header('EdDSA'), { at_hash: half('sha512', 'at-3') }, 'at-3')).not.toThrow();
  });

  it('refuses the hash of another token, or one made with the wrong hash function', () => {
    expect(() => checkAtHash(header('RS256'), { at_hash: half('sha256', 'other') }, 'at-1')).toThrow(/does not match/);
    expect(() => checkAtHash(header('RS384'), { at_hash: half('sha256', 'at-1') }, 'at-1')).toThrow(/does not match/);
  });

  it('refuses at_hash without an access token, of a non-string type, or for an unknown algorithm', () => {
    expect(() => checkAtHash(header('RS256'), { at_hash: half('sha256', 'x') }, undefined)).toThrow();
    expect(() => checkAtHash(header('RS256'), { at_hash: 42 }, 'x')).toThrow();
    expect(() => checkAtHash(header('XY999'), { at_hash: 'abc' }, 'x')).toThrow(/unsupported/);
  });

  it('is silent when the ID token carries no at_hash (it is optional in the code flow)', () => {
    expect(() => checkAtHash(header('RS256'), {}, 'at-1')).not.toThrow();
    expect(() => checkAtHash(undefined, {}, undefined)).not.toThrow();
  });
});
