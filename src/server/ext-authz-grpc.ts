// The ext_authz gRPC listener: envoy.service.auth.v3.Authorization/Check over grpc-js, with Envoy's vendored
// protos (proto/, Apache-2.0). Imported by gateway.ts only when the config has `ext_authz`, so grpc-js and
// the protos load only then. Each call is decided against the runtime state current when it arrives.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Logger } from '../audit/index.ts';
import { splitAddress } from '../core/index.ts';
import { runEnvoyCheck, type ExtAuthzListener, type RuntimeHandle } from '../pipeline/index.ts';
import { checkRequestOf, checkResponseOf } from './ext-authz-messages.ts';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
const SERVICE = 'envoy.service.auth.v3.Authorization';
/** A CheckRequest without a body is a few KB of headers; Envoy sends the body only when told to. */
const MAX_MESSAGE_BYTES = 1 << 20;
const SHUTDOWN_WAIT_MS = 2000;

type Tls = NonNullable<ExtAuthzListener['tls']>;
type IdentityListener = (update: { certificate: Buffer; privateKey: Buffer } | null) => void;
type CaListener = (update: { caCertificate: Buffer } | null) => void;

/** The listener's certificate and client CA as grpc-js certificate providers; a reload pushes new material. */
class StaticCertificates {
  #tls: Tls;
  readonly #identity = new Set<IdentityListener>();
  readonly #ca = new Set<CaListener>();
  constructor(tls: Tls) {
    this.#tls = tls;
  }
  update(tls: Tls): void {
    this.#tls = tls;
    for (const l of this.#identity) this.#sendIdentity(l);
    for (const l of this.#ca) this.#sendCa(l);
  }
  #sendIdentity(l: IdentityListener): void {
    l({ certificate: Buffer.from(this.#tls.cert), privateKey: Buffer.from(this.#tls.key) });
  }
  #sendCa(l: CaListener): void {
    if (this.#tls.ca !== undefined) l({ caCertificate: Buffer.from(this.#tls.ca) });
  }
  // grpc-js registers its own watcher after adding these listeners: a first answer given synchronously
  // would reach nobody (its FileWatcherCertificateProvider answers on the next tick too).
  addIdentityCertificateListener(l: IdentityListener): void {
    this.#identity.add(l);
    process.nextTick(() => this.#sendIdentity(l));
  }
  removeIdentityCertificateListener(l: IdentityListener): void {
    this.#identity.delete(l);
  }
  addCaCertificateListener(l: CaListener): void {
    this.#ca.add(l);
    process.nextTick(() => this.#sendCa(l));
  }
  removeCaCertificateListener(l: CaListener): void {
    this.#ca.delete(l);
  }
}

/**
 * A client certificate is requested when client_ca is set, but not required: a trusted proxy may call without
 * one. grpc-js reports a peer certificate only when it verified against the CA (getAuthContext).
 */
function credentials(tls: Tls | null): { creds: grpc.ServerCredentials; certificates: StaticCertificates | null } {
  if (tls === null) return { creds: grpc.ServerCredentials.createInsecure(), certificates: null };
  const certificates = new StaticCertificates(tls);
  const creds = grpc.experimental.createCertificateProviderServerCredentials(certificates, tls.ca === undefined ? null : certificates, false);
  return { creds, certificates };
}

/** `ipv4:1.2.3.4:5`, `1.2.3.4:5`, `::1:5` → the address. */
function peerAddress(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '');
  const idx = bare.lastIndexOf(':');
  return (idx > 0 ? bare.slice(0, idx) : bare).replace(/^\[|\]$/g, '');
}

export interface ExtAuthzServer {
  readonly port: number;
  /** A reloaded config: new TLS material applies now; a new address, plaintext/TLS or client_ca presence needs a restart. */
  reloaded(next: ExtAuthzListener | null): string | undefined;
  close(): Promise<void>;
}

function loadService(): grpc.ServiceDefinition {
  const definition = loadSync('envoy/service/auth/v3/external_auth.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  return definition[SERVICE] as grpc.ServiceDefinition;
}

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  const { host, port } = splitAddress(address);
  const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => server.bindAsync(target, creds, (err, bound) => (err ? reject(err) : resolve(bound))));
}

export async function startExtAuthz(runtime: RuntimeHandle, log: Logger, listener: ExtAuthzListener): Promise<ExtAuthzServer> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
  server.addService(loadService(), {
    Check(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const caller = { peerIp: peerAddress(call.getPeer()), verifiedCertificate: call.getAuthContext()?.sslPeerCertificate !== undefined };
      runEnvoyCheck(runtime, log, checkRequestOf(call.request), caller).then(
        (result) => {
          if (result.kind === 'untrusted') {
            callback({ code: grpc.status.PERMISSION_DENIED, details: 'ext_authz answers only trusted_proxies or callers with a verified client certificate' });
          } else callback(null, checkResponseOf(result));
        },
        (err: unknown) => {
          log.warn({ err: (err as Error).message }, 'ext_authz check failed');
          callback({ code: grpc.status.INTERNAL, details: 'internal error' });
        },
      );
    },
  });
  const { creds, certificates } = credentials(listener.tls);
  const port = await bind(server, listener.listen, creds);
  const { host } = splitAddress(listener.listen);
  return {
    port,
    reloaded(next) {
      if (next === null) return 'ext_authz removed: restart the gateway to stop its listener';
      if (next.listen !== listener.listen || (next.tls === null) !== (listener.tls === null) || (next.tls?.ca === undefined) !== (listener.tls?.ca === undefined)) {
        return 'ext_authz.listen, its TLS on/off or client_ca presence changed: restart the gateway to apply that part';
      }
      if (certificates !== null && next.tls !== null && (next.tls.cert !== listener.tls?.cert || next.tls.key !== listener.tls.key || next.tls.ca !== listener.tls.ca)) {
        certificates.update(next.tls);
        // Connections verified against the old CA end (GOAWAY): Envoy reconnects and is verified anew.
        server.drain(`${host.includes(':') ? `[${host}]` : host}:${port}`, 1000);
      }
      listener = next;
      return undefined;
    },
    close() {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_WAIT_MS);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
