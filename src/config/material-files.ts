// Every file a config reads besides itself (certificates, keys, CAs, CRLs, the API keys file, the device
// inventory, GeoIP databases, error page templates), with the key that names it. The gateway watches these so a file rotated in
// place (cert-manager, a projected volume's symlink swap) takes effect without a config change.
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from './schema.ts';

export interface MaterialFile {
  /** Absolute path (relative paths in the config are relative to the config file). */
  readonly path: string;
  /** Where the config names it, e.g. `listen.tls.cert` or `routes[2].upstream.tls.ca`. */
  readonly key: string;
  /** Holds X.509 certificates whose expiry is reported (zt_certificate_expiry_seconds). */
  readonly certificates: boolean;
}

export function materialFiles(config: Config, baseDir: string): readonly MaterialFile[] {
  const out = new Map<string, MaterialFile>();
  const add = (key: string, file: string | undefined, certificates = false): void => {
    if (file === undefined) return;
    const path = resolve(baseDir, file);
    const seen = out.get(path);
    // One entry per file; it counts as a certificate file if any key uses it as one.
    if (seen === undefined || (certificates && !seen.certificates)) out.set(path, { path, key: seen?.key ?? key, certificates });
  };
  const tls = config.listen.tls;
  if (tls) {
    add('listen.tls.cert', tls.cert, true);
    add('listen.tls.key', tls.key);
    add('listen.tls.client_ca', tls.client_ca, true);
    add('listen.tls.crl', tls.crl);
    tls.certificates?.forEach((c, i) => {
      add(`listen.tls.certificates[${i}].cert`, c.cert, true);
      add(`listen.tls.certificates[${i}].key`, c.key);
    });
  }
  const admin = config.admin?.tls;
  if (admin) {
    add('admin.tls.cert', admin.cert, true);
    add('admin.tls.key', admin.key);
    add('admin.tls.client_ca', admin.client_ca, true);
  }
  const ext = config.ext_authz?.tls;
  if (ext) {
    add('ext_authz.tls.cert', ext.cert, true);
    add('ext_authz.tls.key', ext.key);
    add('ext_authz.tls.client_ca', ext.client_ca, true);
  }
  config.routes.forEach((r, i) => {
    const up = r.upstream.tls;
    if (!up) return;
    add(`routes[${i}].upstream.tls.ca`, up.ca, true);
    add(`routes[${i}].upstream.tls.cert`, up.cert, true);
    add(`routes[${i}].upstream.tls.key`, up.key);
  });
  for (const [name, p] of Object.entries(config.identity_providers)) {
    if (p.type === 'api_key') add(`identity_providers.${name}.keys_file`, p.keys_file);
    if (p.type === 'jwt') add(`identity_providers.${name}.jwks.ca`, p.jwks.ca, true);
    if (p.type === 'oidc') {
      add(`identity_providers.${name}.ca`, p.ca, true);
      add(`identity_providers.${name}.private_key_jwt.key`, p.private_key_jwt?.key);
    }
  }
  add('identity_headers.assertion_key', config.identity_headers.assertion_key);
  add('devices.inventory', config.devices?.inventory);
  const geoip = config.risk?.geoip_db;
  (geoip === undefined ? [] : Array.isArray(geoip) ? geoip : [geoip]).forEach((f, i) => add(`risk.geoip_db[${i}]`, f));
  const pages = config.error_pages?.dir;
  if (pages !== undefined) {
    // The templates present at load (a template added later is read on the next reload of any kind).
    const dir = resolve(baseDir, pages);
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.html'));
    } catch {
      // a missing directory is the config's load error, not this list's
    }
    for (const n of names.sort()) add(`error_pages.dir/${n}`, join(dir, n));
  }
  return [...out.values()];
}
