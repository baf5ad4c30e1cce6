// Which IdP claims a session keeps: only those the compiled config can read (rule `claims:` conditions and
// `claims.<path>` field references, the providers' claim mappings, what identities and the assertion read),
// plus session.keep_claims. Known once at load; a big identity then costs only what the config needs.
import type { Config, RuleConfig } from '../../config/index.ts';
import { sourceTopLevel } from '../../core/index.ts';
import type { ClaimMapping } from '../claim-mapping.ts';

/**
 * Read by every session identity (session-auth.ts) and the signed assertion, whatever the config; and the
 * group-overage marker, so an identity whose groups are unknown is never kept as one with no groups.
 */
const ALWAYS = ['auth_time', 'amr', 'acr', '_claim_names'];

function ruleClaims(rule: RuleConfig, out: Set<string>): void {
  // A path is read as a top-level claim of that exact name first, else by its first segment: keep both.
  const add = (path: string): void => {
    for (const n of sourceTopLevel(path)) out.add(n);
  };
  for (const path of Object.keys(rule.claims ?? {})) add(path);
  for (const ref of [...Object.values(rule.params ?? {}), ...Object.values(rule.query_params ?? {})]) {
    if (ref.startsWith('claims.')) add(ref.slice('claims.'.length));
  }
}

/** The top-level claim names new sessions keep (a claim read at `a.b` keeps all of `a`). */
export function sessionClaimNames(config: Config, mappings: readonly ClaimMapping[]): ReadonlySet<string> {
  const out = new Set<string>([...ALWAYS, ...(config.session?.keep_claims ?? [])]);
  for (const m of mappings) for (const n of m.reads) out.add(n);
  for (const r of config.routes) for (const rule of [...(r.authorize?.allow ?? []), ...(r.authorize?.deny ?? [])]) ruleClaims(rule, out);
  return out;
}

/** Claims the new config reads that sessions made under the running one do not have. */
export function newlyReadClaims(running: ReadonlySet<string> | undefined, next: ReadonlySet<string>): string[] {
  if (running === undefined) return [];
  return [...next].filter((c) => !running.has(c)).sort();
}
