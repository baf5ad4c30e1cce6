// listen.tls compiled at load: the certificate, key, client CA and CRL read and parsed once, so a bad file is
// a located config error, not a crash at listen().
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { clientTrustChecksum } from '../authn/index.ts';
import { ConfigError, type ConfigReport, type Config, type KeyPath } from '../config/index.ts';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
  readonly crl: string | undefined;
  readonly clientAuth: 'none' | 'optional' | 'require';
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Checksum of ca + crl: which client-verification material this config trusts (authn/tls-trust.ts). */
  readonly clientTrust: string | undefined;
  /** `listen.tls.certificates`: more certificates chosen by SNI (host names lower-case; `*.x` = one label). */
  readonly sni: readonly SniCertificate[];
}

export interface SniCertificate {
  readonly hosts: readonly string[];
  readonly cert: string;
  readonly key: string;
}

type ListenTls = NonNullable<Config['listen']['tls']>;

/** Frozen; null when some file is unusable. Reports every problem, with `path` under `listen.tls`. */
export function compileTlsMaterial(t: ListenTls, baseDir: string, report: ConfigReport): TlsMaterial | null {
  const read = (key: KeyPath, p: string | undefined) => {
    if (p === undefined) return undefined;
    try {
      return readFileSync(resolve(baseDir, p), 'utf8');
    } catch (err) {
      report(new ConfigError('CFG_BAD_FILE', key, `cannot read ${p} (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
      return undefined;
    }
  };
  const cert = read(['cert'], t.cert);
  const key = read(['key'], t.key);
  const ca = read(['client_ca'], t.client_ca);
  const crl = read(['crl'], t.crl);
  if (t.crl !== undefined && t.client_ca === undefined) report(new ConfigError('CFG_CONFLICT', ['crl'], 'crl needs listen.tls.client_ca'));
  if (t.client_auth !== 'none' && t.client_ca === undefined) {
    report(new ConfigError('CFG_CONFLICT', ['client_auth'], 'client_auth needs listen.tls.client_ca'));
  }
  const sni = compileSni(t.certificates ?? [], read, report);
  if (cert === undefined || key === undefined || sni === null) return null;
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}), ...(crl ? { crl } : {}) });
  } catch (err) {
    report(new ConfigError('CFG_BAD_FILE', [], `TLS material is invalid: ${(err as Error).message}`));
    return null;
  }
  return Object.freeze({ cert, key, ca, crl, clientAuth: t.client_auth, minVersion: t.min_version, clientTrust: clientTrustChecksum(ca, crl), sni });
}

/**
 * Each SNI certificate is read, its key checked against it, and every host it is listed for must be one the
 * certificate covers (a client would refuse it otherwise); a host listed twice is ambiguous and refused.
 */
function compileSni(
  entries: NonNullable<ListenTls['certificates']>,
  read: (key: KeyPath, p: string | undefined) => string | undefined,
  report: ConfigReport,
): readonly SniCertificate[] | null {
  const owner = new Map<string, number>();
  const out: SniCertificate[] = [];
  let ok = true;
  entries.forEach((e, i) => {
    const at = (k: string | number, ...more: Array<string | number>): KeyPath => ['certificates', i, k, ...more];
    const cert = read(at('cert'), e.cert);
    const key = read(at('key'), e.key);
    const hosts = e.hosts.map((h) => h.toLowerCase().replace(/\.$/, ''));
    hosts.forEach((h, j) => {
      const first = owner.get(h);
      if (first !== undefined) {
        ok = false;
        report(new ConfigError('CFG_CONFLICT', at('hosts', j), `host ${h} is already served by listen.tls.certificates[${first}]`));
      } else owner.set(h, i);
    });
    if (cert === undefined || key === undefined) return void (ok = false);
    try {
      createSecureContext({ cert, key });
      const x509 = new X509Certificate(cert);
      hosts.forEach((h, j) => {
        // A wildcard entry needs a certificate valid for any one label there: check a name that only it matches.
        const probe = h.startsWith('*.') ? `zt-sni-probe${h.slice(1)}` : h;
        if (x509.checkHost(probe) === undefined) {
          ok = false;
          report(new ConfigError('CFG_BAD_FILE', at('hosts', j), `the certificate in ${e.cert} does not cover ${h}`));
        }
      });
    } catch (err) {
      ok = false;
      report(new ConfigError('CFG_BAD_FILE', at('cert'), `TLS material is invalid: ${(err as Error).message}`));
      return;
    }
    out.push(Object.freeze({ hosts: Object.freeze(hosts), cert, key }));
  });
  return ok ? Object.freeze(out) : null;
}
