// type: mtls — identity from a client certificate the TLS layer verified against listen.tls.client_ca.
// SPIFFE: exactly one spiffe:// URI SAN, in the configured trust domain. The result is cached per connection.
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { unauthenticated } from './credentials.ts';
import { clientTrustOf } from './tls-trust.ts';
import type { Identity } from '../core/index.ts';
import { REALM, type AuthRequest, type Authenticator } from './types.ts';

export interface MtlsProviderOptions {
  name: string;
  trustDomain: string | undefined;
  /** Require a SPIFFE ID (no fallback to the subject CN). Default: true when trustDomain is set. */
  requireSpiffe: boolean;
  /** Checksum of the listener's client CA + CRL this provider was built with (src/authn/tls-trust.ts). */
  clientTrust?: string | undefined;
}

/**
 * Splits Node's subjectaltname string ("DNS:a, URI:spiffe://x/y, IP Address:1.2.3.4"). Node quotes values
 * that contain separators as JSON strings, so quoted values are decoded rather than split.
 */
export function parseSubjectAltName(text: string | undefined): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      next = text.indexOf(',', j + 1);
    } else {
      next = text.indexOf(', ', colon + 1);
      value = text.slice(colon + 1, next < 0 ? text.length : next);
    }
    out.push({ type, value });
    if (next < 0) break;
    i = next + 1;
    while (text[i] === ' ') i++;
  }
  return out;
}

// SPIFFE ID (spiffe.io standard): lower-case trust domain; path segments of [A-Za-z0-9._-], none empty, '.' or
// '..'; no trailing slash, percent-encoding, query or fragment; at most 2048 bytes.
const SPIFFE = /^spiffe:\/\/([a-z0-9._-]{1,255})((?:\/[A-Za-z0-9._-]+)*)$/;

export function isValidSpiffeId(value: string): boolean {
  const m = SPIFFE.exec(value);
  if (!m || value.length > 2048) return false;
  return !(m[2] as string).split('/').some((segment) => segment === '.' || segment === '..');
}

export function createMtlsAuthenticator(o: MtlsProviderOptions): Authenticator {
  const challenge = `Mutual realm="${REALM}"`;
  const perConnection = new WeakMap<Socket, Identity>();

  function fromCertificate(cert: PeerCertificate): Identity {
    const names = parseSubjectAltName(cert.subjectaltname);
    // Subject values are checked one by one (a JSON dump would hide a NUL as the text \u0000).
    const subjectValues = Object.values(cert.subject ?? {}).flatMap((v: unknown) => (Array.isArray(v) ? v : [v])).map(String);
    const all = [...names.map((n) => n.value), ...subjectValues];
    if (all.some((v) => v.includes('\0'))) throw unauthenticated(challenge, 'certificate names contain NUL', 'invalid_client');
    const spiffe = names.filter((n) => n.type === 'URI' && n.value.toLowerCase().startsWith('spiffe:'));
    if (spiffe.length > 1) throw unauthenticated(challenge, 'certificate has more than one SPIFFE ID', 'invalid_client');
    let spiffeId: string | undefined;
    if (spiffe.length === 1) {
      const value = (spiffe[0] as { value: string }).value;
      const m = isValidSpiffeId(value) ? SPIFFE.exec(value) : null;
      if (!m) throw unauthenticated(challenge, 'certificate SPIFFE ID is malformed', 'invalid_client');
      if (o.trustDomain !== undefined && m[1] !== o.trustDomain) {
        throw unauthenticated(challenge, 'certificate SPIFFE ID is outside the trust domain', 'invalid_client');
      }
      spiffeId = m[0];
    } else if (o.requireSpiffe) {
      throw unauthenticated(challenge, 'certificate has no SPIFFE ID', 'invalid_client');
    }
    const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined;
    const subject = spiffeId ?? cn;
    if (!subject) throw unauthenticated(challenge, 'certificate has neither a SPIFFE ID nor a subject CN', 'invalid_client');
    const validTo = Date.parse(cert.valid_to);
    return Object.freeze({
      subject,
      provider: o.name,
      issuer: typeof cert.issuer?.CN === 'string' ? cert.issuer.CN : undefined,
      method: 'mtls',
      email: undefined,
      emailVerified: false,
      groups: Object.freeze([]),
      claims: Object.freeze({ fingerprint256: cert.fingerprint256, serial: cert.serialNumber }),
      spiffeId,
      authTime: undefined,
      amr: Object.freeze(['mtls']),
      acr: undefined,
      expiresAt: Number.isFinite(validTo) ? Math.floor(validTo / 1000) : undefined,
    });
  }

  return {
    name: o.name,
    type: 'mtls',
    challenge,
    consumes: [],
    authenticate(req: AuthRequest) {
      const socket = req.socket as TLSSocket;
      if (typeof socket.getPeerCertificate !== 'function') return undefined; // plaintext listener
      // A keep-alive connection verified against a client CA/CRL that a reload replaced proves nothing now
      // (the certificate may be revoked): its identity is not used; the listener closes it after this answer.
      if (o.clientTrust !== undefined && clientTrustOf(socket) !== o.clientTrust && socket.authorized) {
        throw unauthenticated(challenge, 'connection was verified against a replaced client CA or CRL; reconnect', 'invalid_client');
      }
      let identity = perConnection.get(socket);
      if (identity === undefined) {
        const cert = socket.getPeerCertificate();
        if (!cert || Object.keys(cert).length === 0) return undefined; // no certificate: not mine
        // Only certificates the TLS layer verified against client_ca (and its CRL) count.
        if (!socket.authorized) throw unauthenticated(challenge, 'client certificate is not trusted', 'invalid_client');
        identity = fromCertificate(cert);
        perConnection.set(socket, identity);
      }
      // TLS checked the validity period at the handshake; a keep-alive connection can outlive the certificate.
      if (identity.expiresAt !== undefined && Date.now() >= identity.expiresAt * 1000) {
        throw unauthenticated(challenge, 'client certificate has expired', 'invalid_client');
      }
      return identity;
    },
  };
}
