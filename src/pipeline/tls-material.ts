// listen.tls compiled at load: the certificate, key, client CA and CRL read and parsed once, so a bad file is
// a located config error, not a crash at listen().
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { clientTrustChecksum } from '../authn/index.ts';
import { ConfigError, type ConfigReport, type Config } from '../config/index.ts';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
  readonly crl: string | undefined;
  readonly clientAuth: 'none' | 'optional' | 'require';
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Checksum of ca + crl: which client-verification material this config trusts (authn/tls-trust.ts). */
  readonly clientTrust: string | undefined;
}

type ListenTls = NonNullable<Config['listen']['tls']>;

/** Frozen; null when some file is unusable. Reports every problem, with `path` under `listen.tls`. */
export function compileTlsMaterial(t: ListenTls, baseDir: string, report: ConfigReport): TlsMaterial | null {
  const read = (key: 'cert' | 'key' | 'client_ca' | 'crl', p: string | undefined) => {
    if (p === undefined) return undefined;
    try {
      return readFileSync(resolve(baseDir, p), 'utf8');
    } catch (err) {
      report(new ConfigError('CFG_BAD_FILE', [key], `cannot read ${p} (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
      return undefined;
    }
  };
  const cert = read('cert', t.cert);
  const key = read('key', t.key);
  const ca = read('client_ca', t.client_ca);
  const crl = read('crl', t.crl);
  if (t.crl !== undefined && t.client_ca === undefined) report(new ConfigError('CFG_CONFLICT', ['crl'], 'crl needs listen.tls.client_ca'));
  if (t.client_auth !== 'none' && t.client_ca === undefined) {
    report(new ConfigError('CFG_CONFLICT', ['client_auth'], 'client_auth needs listen.tls.client_ca'));
  }
  if (cert === undefined || key === undefined) return null;
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}), ...(crl ? { crl } : {}) });
  } catch (err) {
    report(new ConfigError('CFG_BAD_FILE', [], `TLS material is invalid: ${(err as Error).message}`));
    return null;
  }
  return Object.freeze({ cert, key, ca, crl, clientAuth: t.client_auth, minVersion: t.min_version, clientTrust: clientTrustChecksum(ca, crl) });
}
