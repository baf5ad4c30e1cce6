// `listen.tls.certificates`: the certificate a TLS client gets is chosen by the name it sends (SNI). Contexts
// are built once per config; the listener's SNICallback only looks them up, and a reload swaps the table.
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TlsMaterial } from '../pipeline/index.ts';

interface Table {
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** `*.example.com` is stored as `example.com`: it matches exactly one more label. */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
}

const EMPTY: Table = { exact: new Map(), wildcard: new Map() };

export class SniContexts {
  #table: Table = EMPTY;

  /** Builds the contexts of a compiled config (throws on bad material: call before committing a reload). */
  static build(tls: TlsMaterial): Table {
    if (tls.sni.length === 0) return EMPTY;
    const exact = new Map<string, SecureContext>();
    const wildcard = new Map<string, SecureContext>();
    for (const c of tls.sni) {
      const ctx = createSecureContext({
        cert: c.cert,
        key: c.key,
        minVersion: tls.minVersion,
        ...(tls.ca ? { ca: tls.ca } : {}),
        ...(tls.crl ? { crl: tls.crl } : {}),
      });
      for (const h of c.hosts) (h.startsWith('*.') ? wildcard.set(h.slice(2), ctx) : exact.set(h, ctx));
    }
    return { exact, wildcard };
  }

  install(table: Table): void {
    this.#table = table;
  }

  /** undefined: the listener's default certificate (no SNI, an unknown name). */
  lookup(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const t = this.#table;
    const hit = t.exact.get(name);
    if (hit !== undefined) return hit;
    const dot = name.indexOf('.');
    return dot > 0 ? t.wildcard.get(name.slice(dot + 1)) : undefined;
  }

  readonly callback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.lookup(servername));
  };
}

export type SniTable = ReturnType<typeof SniContexts.build>;
