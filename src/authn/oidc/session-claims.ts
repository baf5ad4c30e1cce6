// Which IdP claims a session keeps: only those the compiled config can read (rule `claims:` conditions and
// `claims.<path>` field references, the providers' claim mappings, what identities and the assertion read),
// plus session.keep_claims. Known once at load; a big identity then costs only what the config needs.
import type { Config, OidcProviderConfig, RuleConfig } from '../../config/index.ts';

/** Read by every session identity (session-auth.ts) and the signed assertion, whatever the config. */
const ALWAYS = ['auth_time', 'amr', 'acr'];

function fieldClaim(ref: string): string | undefined {
  return ref.startsWith('claims.') ? ref.slice('claims.'.length).split('.')[0] : undefined;
}

function ruleClaims(rule: RuleConfig, out: Set<string>): void {
  for (const path of Object.keys(rule.claims ?? {})) out.add(path.split('.')[0] as string);
  for (const ref of [...Object.values(rule.params ?? {}), ...Object.values(rule.query_params ?? {})]) {
    const c = fieldClaim(ref);
    if (c !== undefined) out.add(c);
  }
}

/** The top-level claim names new sessions keep (a claim read at `a.b` keeps all of `a`). */
export function sessionClaimNames(config: Config, providers: readonly OidcProviderConfig[]): ReadonlySet<string> {
  const out = new Set<string>([...ALWAYS, ...(config.session?.keep_claims ?? [])]);
  for (const p of providers) out.add(p.claims.email).add(p.claims.email_verified).add(p.claims.groups);
  for (const r of config.routes) for (const rule of [...(r.authorize?.allow ?? []), ...(r.authorize?.deny ?? [])]) ruleClaims(rule, out);
  return out;
}

/** Claims the new config reads that sessions made under the running one do not have. */
export function newlyReadClaims(running: ReadonlySet<string> | undefined, next: ReadonlySet<string>): string[] {
  if (running === undefined) return [];
  return [...next].filter((c) => !running.has(c)).sort();
}
