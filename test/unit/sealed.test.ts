// The sealer behind the session and login-transaction cookies: JWE (dir + A256GCM) with keys derived from
// the session secrets. Round trips, purpose binding, tampering of every part, foreign keys and algorithms,
// and secret rotation (the first secret seals, every listed one opens).
import { describe, expect, it } from 'vitest';
import { CompactEncrypt } from 'jose';
import { createSealer } from '../../src/authn/oidc/sealed.ts';

const S1 = 'first-session-secret-0123456789abcdefghij';
const S2 = 'second-session-secret-0123456789abcdefghi';
const S3 = 'third-session-secret-0123456789abcdefghij';

function flip(token: string, part: number, index: number): string {
  const parts = token.split('.');
  const p = parts[part] as string;
  const i = Math.min(index, p.length - 1);
  parts[part] = p.slice(0, i) + (p[i] === 'A' ? 'B' : 'A') + p.slice(i + 1);
  return parts.join('.');
}

describe('createSealer', () => {
  it('round-trips a payload for its purpose, and the token hides it', async () => {
    const sealer = createSealer([S1]);
    const token = await sealer.seal({ id: 'abc', sub: 'alice', n: 1, nested: { x: [1, 2] } }, 'session');
    expect(token.split('.')).toHaveLength(5);
    expect(token).not.toContain('alice');
    const header = JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString());
    expect(header).toMatchObject({ alg: 'dir', enc: 'A256GCM' });
    expect(typeof header.kid).toBe('string');
    expect(token.split('.')[1]).toBe(''); // dir: no encrypted key
    expect(await sealer.open(token, 'session')).toEqual({ id: 'abc', sub: 'alice', n: 1, nested: { x: [1, 2] }, pur: 'session' });
  });

  it('two seals of the same payload differ (random IV)', async () => {
    const sealer = createSealer([S1]);
    const a = await sealer.seal({ id: 'same' }, 'session');
    const b = await sealer.seal({ id: 'same' }, 'session');
    expect(a).not.toBe(b);
  });

  it('a token sealed for one purpose never opens for another (login transaction ≠ session ≠ sid)', async () => {
    const sealer = createSealer([S1]);
    const tx = await sealer.seal({ state: 's', nonce: 'n' }, 'login');
    expect(await sealer.open(tx, 'session')).toBeUndefined();
    expect(await sealer.open(tx, 'sid')).toBeUndefined();
    expect(await sealer.open(tx, 'login')).toMatchObject({ state: 's' });
    // A payload that tries to claim another purpose is overridden by the sealing purpose.
    const sneaky = await sealer.seal({ id: 'x', pur: 'session' }, 'login');
    expect(await sealer.open(sneaky, 'session')).toBeUndefined();
  });

  it('any modified part is refused', async () => {
    const sealer = createSealer([S1]);
    const token = await sealer.seal({ id: 'abc', sub: 'alice' }, 'session');
    for (const [part, index] of [[0, 5], [0, 20], [2, 3], [3, 0], [3, 10], [4, 0], [4, 10]] as const) {
      expect(await sealer.open(flip(token, part, index), 'session'), `part ${part} index ${index}`).toBeUndefined();
    }
    const parts = token.split('.');
    expect(await sealer.open([parts[0], parts[1], parts[2], parts[3], ''].join('.'), 'session')).toBeUndefined();
    expect(await sealer.open([parts[0], 'AAAA', parts[2], parts[3], parts[4]].join('.'), 'session')).toBeUndefined();
    expect(await sealer.open(`${token}.x`, 'session')).toBeUndefined();
    expect(await sealer.open(token.slice(0, -1), 'session')).toBeUndefined();
  });

  it('garbage, oversized and non-JWE input is refused without throwing', async () => {
    const sealer = createSealer([S1]);
    for (const junk of ['', 'x', 'a.b.c.d.e', '....', 'e30.e30.e30.e30.e30', '%%%.%%%.%%%.%%%.%%%', 'eyJ.eyJ.eyJ', `${'A'.repeat(5000)}.a.b.c.d`]) {
      expect(await sealer.open(junk, 'session'), junk.slice(0, 20)).toBeUndefined();
    }
  });

  it('a token from another secret is refused; so is a header naming our kid over a foreign key or algorithm', async () => {
    const mine = createSealer([S1]);
    const theirs = createSealer([S2]);
    expect(await mine.open(await theirs.seal({ id: 'x' }, 'session'), 'session')).toBeUndefined();
    const good = await mine.seal({ id: 'x' }, 'session');
    const kid = JSON.parse(Buffer.from(good.split('.')[0] as string, 'base64url').toString()).kid as string;
    const plaintext = new TextEncoder().encode(JSON.stringify({ id: 'forged', pur: 'session' }));
    // Our kid, someone else's 256-bit key.
    const foreignKey = new Uint8Array(32).fill(7);
    const forged = await new CompactEncrypt(plaintext).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid }).encrypt(foreignKey);
    expect(await mine.open(forged, 'session')).toBeUndefined();
    // Our kid, another content encryption algorithm.
    const cbc = await new CompactEncrypt(plaintext).setProtectedHeader({ alg: 'dir', enc: 'A128CBC-HS256', kid }).encrypt(new Uint8Array(32).fill(1));
    expect(await mine.open(cbc, 'session')).toBeUndefined();
    // No kid at all.
    const noKid = await new CompactEncrypt(plaintext).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(foreignKey);
    expect(await mine.open(noKid, 'session')).toBeUndefined();
  });

  it('rotation: the first secret seals, old secrets still open, dropped secrets no longer do', async () => {
    const before = createSealer([S1]);
    const oldToken = await before.seal({ id: 'old' }, 'session');
    const rotated = createSealer([S2, S1]);
    expect(await rotated.open(oldToken, 'session')).toMatchObject({ id: 'old' });
    const newToken = await rotated.seal({ id: 'new' }, 'session');
    expect(await before.open(newToken, 'session')).toBeUndefined(); // sealed with S2
    expect(await createSealer([S2]).open(newToken, 'session')).toMatchObject({ id: 'new' });
    const later = createSealer([S3, S2]);
    expect(await later.open(oldToken, 'session')).toBeUndefined(); // S1 dropped
    expect(await later.open(newToken, 'session')).toMatchObject({ id: 'new' });
  });

  it('needs at least one secret', () => {
    expect(() => createSealer([])).toThrow(TypeError);
  });
});
