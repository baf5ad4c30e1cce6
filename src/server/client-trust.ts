// Tags every TLS connection of the main listener with the client-trust checksum current when its TCP
// connection was accepted: Node fixes a connection's secure context then, so a handshake still in progress
// during a CA/CRL reload is verified against the old material and must be tagged with it.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { clientTrustOf, recordClientTrust } from '../authn/index.ts';
import type { TlsMaterial } from '../pipeline/index.ts';
import type { H2Sessions } from './h2.ts';

function hasClientCertificate(socket: Socket): boolean {
  const peer = (socket as TLSSocket).getPeerCertificate?.();
  return peer !== undefined && peer !== null && Object.keys(peer).length > 0;
}

function connectionKey(s: Socket): string | undefined {
  // The raw and the TLS socket share the 4-tuple, unique among open connections of one listener.
  return s.remotePort === undefined ? undefined : `${s.remoteAddress}|${s.remotePort}|${s.localPort}`;
}

export interface ClientTrustTracker {
  /** After a CA/CRL reload: closes idle connections verified against the old material, busy ones after their answer. */
  trustChanged(): void;
}

export function trackClientTrust(server: Server, current: () => string | undefined, h2?: H2Sessions): ClientTrustTracker {
  const accepted = new Map<string, string>();
  const open = new Set<Socket>();
  const lastResponse = new WeakMap<Socket, ServerResponse>();
  const stale = (socket: Socket, trust: string | undefined) => trust !== undefined && clientTrustOf(socket) !== trust;

  server.prependListener('connection', (raw: Socket) => {
    const key = connectionKey(raw);
    const trust = current();
    if (key === undefined || trust === undefined) return;
    accepted.set(key, trust);
    raw.once('close', () => {
      if (accepted.get(key) === trust) accepted.delete(key);
    });
  });
  server.prependListener('secureConnection', (tlsSocket: Socket) => {
    const key = connectionKey(tlsSocket);
    open.add(tlsSocket);
    tlsSocket.once('close', () => open.delete(tlsSocket));
    if (key === undefined) return;
    const trust = accepted.get(key);
    accepted.delete(key);
    if (trust !== undefined) recordClientTrust(tlsSocket, trust);
  });
  // A request on a connection verified against replaced material is answered, then the connection closes,
  // so the client's next request gets a fresh handshake against the current CA/CRL.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMajor === 2) return; // HTTP/2: stale sessions get GOAWAY in trustChanged()
    lastResponse.set(req.socket, res);
    if (stale(req.socket, current())) res.shouldKeepAlive = false;
  });

  return {
    trustChanged() {
      server.closeIdleConnections();
      const trust = current();
      // HTTP/2: GOAWAY to sessions verified against the old material; their open streams finish, the
      // client's next request opens a new connection (a request meanwhile is refused by mtls.ts).
      h2?.closeAll((socket) => stale(socket, trust));
      for (const socket of open) {
        if (h2?.sessionOf(socket) !== undefined) continue;
        if (!stale(socket, trust)) continue;
        if (socket.destroyed) continue; // idle: closed above
        const res = lastResponse.get(socket);
        if (res !== undefined && !res.writableFinished) {
          if (!res.headersSent) res.shouldKeepAlive = false; // the answer says Connection: close
          else res.once('finish', () => socket.end());
        } else if (hasClientCertificate(socket)) {
          socket.destroy(); // an upgraded (WebSocket) connection authenticated by a certificate under the old trust
        }
      }
    },
  };
}

/**
 * setSecureContext cannot change requestCert/rejectUnauthorized of a running listener, so a reload that
 * changes client_auth, or adds or removes client_ca, needs a restart. undefined when the reload may proceed.
 */
export function clientAuthChange(before: TlsMaterial | null, after: TlsMaterial | null): string | undefined {
  if (before === null || after === null) return undefined; // TLS on/off: a restart, warned about separately
  if (before.clientAuth !== after.clientAuth) {
    return `listen.tls.client_auth: changed from ${before.clientAuth} to ${after.clientAuth}; this needs a restart`;
  }
  if ((before.ca === undefined) !== (after.ca === undefined)) {
    return `listen.tls.client_ca: ${after.ca === undefined ? 'removed' : 'added'}; this needs a restart`;
  }
  return undefined;
}
