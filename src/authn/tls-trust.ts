// Which client-trust material (listen.tls client_ca + crl) verified a connection's certificate. A reload
// that changes it leaves keep-alive connections verified against the old CA/CRL: their certificates no
// longer count until the client reconnects and is verified again.
import { createHash } from 'node:crypto';

const verifiedUnder = new WeakMap<object, string>();

/** Stable checksum of the client-verification material; undefined when no client CA is configured. */
export function clientTrustChecksum(ca: string | undefined, crl: string | undefined): string | undefined {
  if (ca === undefined) return undefined;
  return createHash('sha256').update(ca).update('\0').update(crl ?? '').digest('base64url');
}

/** Called by the listener for every TLS connection, with the trust that was current when it was accepted. */
export function recordClientTrust(socket: object, checksum: string): void {
  verifiedUnder.set(socket, checksum);
}

export function clientTrustOf(socket: object): string | undefined {
  return verifiedUnder.get(socket);
}
