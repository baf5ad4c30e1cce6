// Encrypted, authenticated cookie payloads: JWE (dir + A256GCM) with keys derived from session secrets.
// The first secret seals; every listed secret opens, so secrets can be rotated without logging users out.
import { hkdfSync, createHash } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';

interface Key {
  kid: string;
  key: Uint8Array;
}

/** The longest token open() reads: a session split over its three cookies (session-cookies.ts). */
const MAX_TOKEN_CHARS = 3 * 3800;

export interface Sealer {
  seal(payload: object, purpose: string): Promise<string>;
  /** undefined for anything tampered, foreign, for another purpose, or unparseable. */
  open(token: string, purpose: string): Promise<Record<string, unknown> | undefined>;
}

function derive(secret: string): Key {
  const key = new Uint8Array(hkdfSync('sha256', secret, 'zt-gateway', 'zt-gateway cookie encryption v1', 32));
  const kid = createHash('sha256').update(key).digest('base64url').slice(0, 8);
  return { kid, key };
}

export function createSealer(secrets: readonly string[]): Sealer {
  const keys = secrets.map(derive);
  const current = keys[0];
  if (current === undefined) throw new TypeError('at least one session secret is needed');
  const byKid = new Map(keys.map((k) => [k.kid, k]));
  const encoder = new TextEncoder();
  return {
    seal(payload, purpose) {
      return new CompactEncrypt(encoder.encode(JSON.stringify({ ...payload, pur: purpose })))
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: current.kid })
        .encrypt(current.key);
    },
    async open(token, purpose) {
      if (token.length > MAX_TOKEN_CHARS || token.split('.').length !== 5) return undefined;
      try {
        const header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString()) as { kid?: string };
        const k = header.kid === undefined ? undefined : byKid.get(header.kid);
        if (k === undefined) return undefined;
        const { plaintext } = await compactDecrypt(token, k.key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
        const payload = JSON.parse(new TextDecoder().decode(plaintext)) as Record<string, unknown>;
        return payload.pur === purpose ? payload : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
