// A provider's `claims:` block compiled once into accessors: which claims give the subject, the email (and
// whether it is verified) and the groups. Groups from several sources are merged and de-duplicated in
// order; non-string values are ignored; more than MAX_GROUPS is refused (a cut list could drop the group a
// deny rule names), never silently truncated.
import { claimReader, sourceTopLevel, type ClaimReader, type ClaimSource } from '../core/index.ts';

export const MAX_GROUPS = 1000;
/** The longest group name kept (longer values are ignored, not cut). */
export const MAX_GROUP_CHARS = 1024;

export type ClaimSources = ClaimSource | readonly ClaimSource[];

export interface ClaimsConfig {
  subject: ClaimSources;
  email: ClaimSources;
  email_verified: ClaimSources;
  groups: ClaimSources;
}

type Claims = Readonly<Record<string, unknown>>;

export interface ClaimMapping {
  subject(c: Claims): string | undefined;
  email(c: Claims): string | undefined;
  /** The email claim is asserted verified (email_verified === true). */
  emailVerified(c: Claims): boolean;
  /** The groups, or null when the claims carry more than MAX_GROUPS of them. */
  groups(c: Claims): readonly string[] | null;
  /** Some source of the email and some source of the groups are present (else UserInfo may have them). */
  complete(c: Claims): boolean;
  /** Top-level claim names the mapping may read (UserInfo lookups, session claim minimization). */
  readonly reads: readonly string[];
  /** A description for messages, e.g. "sub". */
  readonly subjectName: string;
}

const listOf = (s: ClaimSources): readonly ClaimSource[] => (Array.isArray(s) ? s : [s as ClaimSource]);
const nameOf = (s: ClaimSource): string => (typeof s === 'string' ? s : s.path.join(' → '));

/** The first of the sources whose value passes `accept`. */
function first<T>(readers: readonly ClaimReader[], accept: (v: unknown) => v is T): (c: Claims) => T | undefined {
  if (readers.length === 1) {
    const r = readers[0] as ClaimReader;
    return (c) => {
      const v = r(c);
      return accept(v) ? v : undefined;
    };
  }
  return (c) => {
    for (const r of readers) {
      const v = r(c);
      if (accept(v)) return v;
    }
    return undefined;
  };
}

const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isString = (v: unknown): v is string => typeof v === 'string';
const isTrue = (v: unknown): v is true => v === true;

function groupsOf(readers: readonly ClaimReader[]): (c: Claims) => readonly string[] | null {
  return (c) => {
    const seen = new Set<string>();
    const add = (g: unknown): void => {
      if (typeof g === 'string' && g !== '' && g.length <= MAX_GROUP_CHARS) seen.add(g);
    };
    for (const r of readers) {
      const v = r(c);
      if (typeof v === 'string') add(v);
      else if (Array.isArray(v)) {
        // Never walk more than the cap allows: a hostile or runaway array is refused, not iterated.
        if (v.length > MAX_GROUPS) return null;
        for (let i = 0; i < v.length; i++) add(v[i]);
      }
      if (seen.size > MAX_GROUPS) return null;
    }
    return [...seen];
  };
}

export function compileClaimMapping(cfg: ClaimsConfig): ClaimMapping {
  const readers = (s: ClaimSources) => listOf(s).map(claimReader);
  const email = first(readers(cfg.email), isString);
  const verified = first(readers(cfg.email_verified), isTrue);
  const present = (s: ClaimSources) => {
    const rs = readers(s);
    return (c: Claims) => rs.some((r) => r(c) !== undefined);
  };
  const hasEmail = present(cfg.email);
  const hasGroups = present(cfg.groups);
  const reads = new Set<string>();
  for (const s of [cfg.subject, cfg.email, cfg.email_verified, cfg.groups]) for (const src of listOf(s)) for (const n of sourceTopLevel(src)) reads.add(n);
  return Object.freeze<ClaimMapping>({
    subject: first(readers(cfg.subject), isNonEmptyString),
    email,
    emailVerified: (c) => verified(c) === true,
    groups: groupsOf(readers(cfg.groups)),
    complete: (c) => hasEmail(c) && hasGroups(c),
    reads: Object.freeze([...reads]),
    subjectName: listOf(cfg.subject).map(nameOf).join(' | '),
  });
}
