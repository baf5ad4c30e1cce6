// Connects the access state to the rest of the process: session revocations reach this instance's session
// store, grant expiries are audited, and the admin listener's TLS material is read.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../audit/logger.ts';
import type { CompiledConfig } from '../pipeline/compile.ts';
import { activeGrantCount, grantAudit } from '../state/grants.ts';
import { setActiveGrantsSource } from '../metrics/index.ts';
import type { AdminTls } from './admin.ts';
import type { Runtime } from './runtime.ts';

export function wireAccessState(runtime: Runtime, log: Logger): void {
  // zt_grants_active reads the store at scrape time (one gauge per process).
  setActiveGrantsSource(() => activeGrantCount(runtime.access));
  runtime.access.onSessionsRevoked((subject, atMs) => {
    runtime.current.compiled.rp?.revokeSessions(subject, atMs, true).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'revoking sessions failed'));
  });
  // Status 0: no HTTP exchange; each instance records the expiry it observed.
  runtime.access.onGrantExpired((g) => runtime.current.audit.record(undefined, 0, undefined, { decision: 'grant', ...grantAudit('grant.expire', g, undefined, undefined) }));
}

export function readAdminTls(compiled: CompiledConfig): AdminTls | undefined {
  const tls = compiled.config.admin?.tls;
  if (!tls) return undefined;
  const read = (p: string) => readFileSync(resolve(compiled.source.baseDir, p), 'utf8');
  return { cert: read(tls.cert), key: read(tls.key), ca: tls.client_ca === undefined ? undefined : read(tls.client_ca) };
}
