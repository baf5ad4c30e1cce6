// API keys: hashing, keys-file validation and the authenticator's decisions (no timing assertions: behaviour only).
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createApiKeyAuthenticator, hashKey, loadKeysFile, newApiKey } from '../../src/authn/api-key.ts';
import type { AuthRequest } from '../../src/authn/types.ts';
import { GatewayError } from '../../src/core/errors.ts';
import { tempDir } from '../helpers/gateway.ts';

const dir = tempDir('ztgw-apikey-');
let fileNo = 0;
function keysFile(yaml: string): string {
  const path = join(dir, `keys-${fileNo++}.yaml`);
  writeFileSync(path, yaml);
  return path;
}

function req(authorization: string | undefined, raw: string[] = []): AuthRequest {
  return { authorization, rawHeaders: raw, socket: {} as Socket };
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('expected a refusal');
}

describe('hashKey / newApiKey', () => {
  it('hashKey is the hex SHA-256 of the UTF-8 key', () => {
    expect(hashKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashKey('schlüssel')).toBe(createHash('sha256').update(Buffer.from('schlüssel', 'utf8')).digest('hex'));
  });

  it('newApiKey makes a fresh 256-bit key and its hash', () => {
    const a = newApiKey();
    const b = newApiKey();
    expect(a.key).toMatch(/^ztk_[A-Za-z0-9_-]{43}$/);
    expect(a.hash).toBe(hashKey(a.key));
    expect(a.key).not.toBe(b.key);
  });
});

describe('loadKeysFile', () => {
  it('loads entries with groups, expiry and an optional sha256: prefix', () => {
    const h = hashKey('k1');
    const entries = loadKeysFile(
      keysFile(`keys:
  - { id: one, hash: ${h}, subject: svc-one, groups: [ops, "a,b"] }
  - { id: two, hash: "sha256:${hashKey('k2')}", subject: svc-two, expires: "2030-01-01T00:00:00Z" }
`),
      'keys',
    );
    expect(entries.map((e) => e.id)).toEqual(['one', 'two']);
    expect(entries[0]?.hash.toString('hex')).toBe(h);
    expect(entries[0]?.identity).toMatchObject({ subject: 'svc-one', provider: 'keys', method: 'api_key', groups: ['ops', 'a,b'], claims: { key_id: 'one' }, amr: ['api_key'] });
    expect(entries[1]?.expiresAtMs).toBe(Date.parse('2030-01-01T00:00:00Z'));
    expect(entries[1]?.identity.expiresAt).toBe(Date.parse('2030-01-01T00:00:00Z') / 1000);
    expect(Object.isFrozen(entries[0]?.identity)).toBe(true);
  });

  it.each([
    ['a hash that is not 64 hex digits', `keys: [{ id: a, hash: abc123, subject: s }]`, /keys\.0\.hash: hash must be the hex SHA-256/],
    ['a plaintext key where the hash belongs', `keys: [{ id: a, hash: ztk_supersecretvalue, subject: s }]`, /keys\.0\.hash/],
    ['a duplicate id', `keys: [{ id: a, hash: ${hashKey('x')}, subject: s }, { id: a, hash: ${hashKey('y')}, subject: t }]`, /duplicate key id "a"/],
    ['an unknown field', `keys: [{ id: a, hash: ${hashKey('x')}, subject: s, key: plain }]`, /keys\.0/],
    ['an expiry without a time zone', `keys: [{ id: a, hash: ${hashKey('x')}, subject: s, expires: "2030-01-01" }]`, /keys\.0\.expires/],
    ['an empty subject', `keys: [{ id: a, hash: ${hashKey('x')}, subject: "" }]`, /keys\.0\.subject/],
    ['an empty file', ``, /keys file .*keys-\d+\.yaml: \S/],
    ['a YAML syntax error', `keys: [ { id: a, hash: b: c`, /keys file .*keys-\d+\.yaml: invalid YAML/],
  ])('refuses %s, naming the file', (_what, yaml, message) => {
    const path = keysFile(yaml);
    expect(() => loadKeysFile(path, 'keys')).toThrow(message);
    expect(() => loadKeysFile(path, 'keys')).toThrow(path);
  });

  it('a refused file never echoes a value from it', () => {
    const path = keysFile(`keys: [{ id: a, hash: ztk_supersecretvalue, subject: s }]`);
    expect(() => loadKeysFile(path, 'keys')).toThrow(/^(?!.*supersecret)/s);
  });

  it('a missing file is refused with its path', () => {
    expect(() => loadKeysFile(join(dir, 'missing.yaml'), 'keys')).toThrow(/keys file .*missing\.yaml: cannot read \(ENOENT\)/);
  });
});

describe('createApiKeyAuthenticator', () => {
  // Many entries: the presented key is compared against all of them; any position must work.
  const keys = Array.from({ length: 101 }, (_, i) => `ztk_test_key_${String(i).padStart(3, '0')}_${'x'.repeat(20)}`);
  const expiredKey = 'ztk_expired_key';
  const path = keysFile(`keys:
${keys.map((k, i) => `  - { id: k${i}, hash: ${hashKey(k)}, subject: svc-${i}, groups: [g${i % 3}] }`).join('\n')}
  - { id: old, hash: ${hashKey(expiredKey)}, subject: svc-old, expires: "2000-01-01T00:00:00Z" }
`);
  const auth = createApiKeyAuthenticator({ name: 'keys', keys: loadKeysFile(path, 'keys'), header: 'X-API-Key' });

  it('declares its challenge and the headers it consumes', () => {
    expect(auth.type).toBe('api_key');
    expect(auth.challenge).toBe('ApiKey realm="zt-gateway"');
    expect(auth.consumes).toEqual(['authorization', 'x-api-key']);
    expect(createApiKeyAuthenticator({ name: 'k', keys: [], header: undefined }).consumes).toEqual(['authorization']);
  });

  it.each([0, 50, 100])('the entry at position %i authenticates', (i) => {
    const id = auth.authenticate(req(`ApiKey ${keys[i]}`));
    expect(id).toMatchObject({ subject: `svc-${i}`, method: 'api_key', provider: 'keys', groups: [`g${i % 3}`], claims: { key_id: `k${i}` } });
  });

  it('the scheme is case-insensitive', () => {
    expect(auth.authenticate(req(`apikey ${keys[1]}`))).toMatchObject({ subject: 'svc-1' });
  });

  it('near misses of a valid key all fail: one character changed at the start, middle or end; truncated; extended', () => {
    const k = keys[50] as string;
    const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === 'a' ? 'b' : 'a') + s.slice(at + 1);
    for (const candidate of [flip(k, 0), flip(k, k.length >> 1), flip(k, k.length - 1), k.slice(0, -1), `${k}x`, k.toUpperCase()]) {
      const err = refusal(() => auth.authenticate(req(`ApiKey ${candidate}`)));
      expect(err.code).toBe('GW_ERR_UNAUTHENTICATED');
      expect(err.detail).toBe('API key is invalid');
      expect(err.headers).toEqual([['www-authenticate', 'ApiKey realm="zt-gateway", error="invalid_token", error_description="API key is invalid"']]);
    }
  });

  it('the hash itself is not a key', () => {
    expect(refusal(() => auth.authenticate(req(`ApiKey ${hashKey(keys[0] as string)}`))).detail).toBe('API key is invalid');
  });

  it('an expired key is refused even though its hash matches', () => {
    expect(refusal(() => auth.authenticate(req(`ApiKey ${expiredKey}`))).detail).toBe('API key expired');
  });

  it('an empty or oversized key is refused without hashing', () => {
    expect(refusal(() => auth.authenticate(req('ApiKey    '))).detail).toBe('API key is invalid');
    expect(refusal(() => auth.authenticate(req(`ApiKey ${'a'.repeat(513)}`))).detail).toBe('API key is invalid');
  });

  it('reads the configured header (any case) when Authorization carries no ApiKey', () => {
    expect(auth.authenticate(req(undefined, ['x-api-key', keys[7] as string]))).toMatchObject({ subject: 'svc-7' });
    expect(auth.authenticate(req('Bearer abc', ['X-Api-Key', ` ${keys[8]} `]))).toMatchObject({ subject: 'svc-8' });
  });

  it('Authorization: ApiKey wins over the header', () => {
    expect(auth.authenticate(req(`ApiKey ${keys[9]}`, ['X-API-Key', keys[10] as string]))).toMatchObject({ subject: 'svc-9' });
  });

  it('two key headers are refused as an invalid request', () => {
    const err = refusal(() => auth.authenticate(req(undefined, ['X-API-Key', keys[1] as string, 'x-api-key', keys[1] as string])));
    expect(err.headers[0]?.[1]).toContain('error="invalid_request"');
  });

  it('no ApiKey credentials at all is "not mine" (the route answers with the challenge)', () => {
    expect(auth.authenticate(req(undefined))).toBeUndefined();
    expect(auth.authenticate(req('Bearer eyJ.x.y'))).toBeUndefined();
    expect(auth.authenticate(req('ApiKey'))).toBeUndefined();
    expect(auth.authenticate(req(undefined, ['X_API_Key', keys[0] as string]))).toBeUndefined();
  });

  it('without a configured header, the header is ignored', () => {
    const noHeader = createApiKeyAuthenticator({ name: 'k', keys: loadKeysFile(path, 'k'), header: undefined });
    expect(noHeader.authenticate(req(undefined, ['X-API-Key', keys[0] as string]))).toBeUndefined();
  });
});
