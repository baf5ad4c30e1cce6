// type: api_key — `Authorization: ApiKey <key>` or a configured header. The keys file holds only SHA-256
// hashes; a presented key is hashed and compared against every entry in constant time.
import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { credentialsFor, unauthenticated } from './credentials.ts';
import type { Identity } from '../core/index.ts';
import { REALM, type AuthRequest, type Authenticator } from './types.ts';

const keysFileSchema = z.strictObject({
  keys: z.array(
    z.strictObject({
      id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
      hash: z.string().regex(/^(sha256:)?[0-9a-f]{64}$/, 'hash must be the hex SHA-256 of the key (zt-gateway hash-key)'),
      subject: z.string().min(1),
      groups: z.array(z.string()).default([]),
      expires: z.iso.datetime({ offset: true }).optional(),
    }),
  ),
});

interface KeyEntry {
  id: string;
  hash: Buffer;
  identity: Identity;
  expiresAtMs: number | undefined;
}

/** Reads and validates a keys file; throws Error with a precise message (reported as a config error). */
export function loadKeysFile(path: string, provider: string): KeyEntry[] {
  // Unreadable file or YAML syntax error: the message still names the keys file (and no key material).
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`keys file ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (err) {
    const firstLine = ((err as Error).message.split('\n')[0] ?? '').replace(/:$/, '');
    throw new Error(`keys file ${path}: invalid YAML: ${firstLine}`);
  }
  const parsed = keysFileSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new Error(`keys file ${path}: ${at}${issue?.message}`);
  }
  const ids = new Set<string>();
  return parsed.data.keys.map((k) => {
    if (ids.has(k.id)) throw new Error(`keys file ${path}: duplicate key id "${k.id}"`);
    ids.add(k.id);
    const expiresAtMs = k.expires ? Date.parse(k.expires) : undefined;
    return {
      id: k.id,
      hash: Buffer.from(k.hash.replace(/^sha256:/, ''), 'hex'),
      expiresAtMs,
      identity: Object.freeze({
        subject: k.subject,
        provider,
        issuer: undefined,
        method: 'api_key',
        email: undefined,
        emailVerified: false,
        groups: Object.freeze([...k.groups]),
        claims: Object.freeze({ key_id: k.id }),
        spiffeId: undefined,
        authTime: undefined,
        amr: Object.freeze(['api_key']),
        acr: undefined,
        expiresAt: expiresAtMs === undefined ? undefined : Math.floor(expiresAtMs / 1000),
      }),
    };
  });
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new random key (256 bits) and the hash to put in the keys file. */
export function newApiKey(): { key: string; hash: string } {
  const key = `ztk_${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashKey(key) };
}

export function createApiKeyAuthenticator(o: { name: string; keys: KeyEntry[]; header: string | undefined }): Authenticator {
  const challenge = `ApiKey realm="${REALM}"`;
  const header = o.header?.toLowerCase();

  function presented(req: AuthRequest): string | undefined {
    const fromAuthorization = credentialsFor(req.authorization, 'ApiKey');
    if (fromAuthorization !== undefined || header === undefined) return fromAuthorization;
    let found: string | undefined;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if ((req.rawHeaders[i] as string).toLowerCase() !== header) continue;
      if (found !== undefined) throw unauthenticated(challenge, `more than one ${o.header} header`, 'invalid_request');
      found = (req.rawHeaders[i + 1] as string).trim();
    }
    return found;
  }

  return {
    name: o.name,
    type: 'api_key',
    challenge,
    consumes: header ? ['authorization', header] : ['authorization'],
    authenticate(req: AuthRequest) {
      const key = presented(req);
      if (key === undefined) return undefined;
      if (key.length === 0 || key.length > 512) throw unauthenticated(challenge, 'API key is invalid');
      const digest = hash('sha256', key, 'buffer');
      // Compare against every entry so timing does not reveal which (if any) matched.
      let match: KeyEntry | undefined;
      for (const entry of o.keys) if (timingSafeEqual(entry.hash, digest) && match === undefined) match = entry;
      if (match === undefined) throw unauthenticated(challenge, 'API key is invalid');
      if (match.expiresAtMs !== undefined && Date.now() >= match.expiresAtMs) throw unauthenticated(challenge, 'API key expired');
      return match.identity;
    },
  };
}
