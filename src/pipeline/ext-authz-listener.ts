// `ext_authz:` compiled at load: its TLS files read and checked once, relative to the config file, so a bad
// file is a located config error (and a reload that breaks one keeps the running config).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError, type ConfigReport, type ExtAuthzConfig } from '../config/index.ts';

export interface ExtAuthzListener {
  readonly listen: string;
  /** null: plaintext HTTP/2 (h2c). */
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string | undefined } | null;
}

/** Frozen; null when a TLS file is unusable (reported with `path` under `ext_authz`). */
export function compileExtAuthzListener(c: ExtAuthzConfig, baseDir: string, report: ConfigReport): ExtAuthzListener | null {
  const t = c.tls;
  if (t === undefined) return Object.freeze({ listen: c.listen, tls: null });
  const read = (key: 'cert' | 'key' | 'client_ca', p: string | undefined) => {
    if (p === undefined) return undefined;
    try {
      return readFileSync(resolve(baseDir, p), 'utf8');
    } catch (err) {
      report(new ConfigError('CFG_BAD_FILE', ['tls', key], `cannot read ${p} (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
      return undefined;
    }
  };
  const cert = read('cert', t.cert);
  const key = read('key', t.key);
  const ca = read('client_ca', t.client_ca);
  if (cert === undefined || key === undefined || (t.client_ca !== undefined && ca === undefined)) return null;
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    report(new ConfigError('CFG_BAD_FILE', ['tls'], `TLS material is invalid: ${(err as Error).message}`));
    return null;
  }
  return Object.freeze({ listen: c.listen, tls: Object.freeze({ cert, key, ca }) });
}
