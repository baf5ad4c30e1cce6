// Resource-level conditions: `params: { tenant: claims.tenant_ids }` binds a named path segment, and
// `query_params` a query parameter, to a field of the verified identity. A value holds when it equals the
// field, or one of its values when the field is a list. A missing field, segment or parameter fails (deny).
import { claimReader, type ClaimReader, type Identity } from '../core/index.ts';
import { IDENTITY_FIELD } from '../config/index.ts';
import type { Condition } from './input.ts';
import { paramKeys } from '../normalize/index.ts';

type FieldReader = (id: Identity) => readonly string[] | undefined;

function claimValues(claims: Readonly<Record<string, unknown>>, read: ClaimReader): readonly string[] | undefined {
  const v = read(claims);
  const scalar = (x: unknown): string | undefined =>
    typeof x === 'string' ? x : typeof x === 'number' && Number.isFinite(x) ? String(x) : undefined;
  if (Array.isArray(v)) {
    const out: string[] = [];
    for (const x of v) {
      const s = scalar(x);
      if (s !== undefined) out.push(s);
    }
    return out;
  }
  const s = scalar(v);
  return s === undefined ? undefined : [s];
}

/** Compiles a field reference (already checked against IDENTITY_FIELD by the schema). */
export function identityField(ref: string): FieldReader {
  if (ref === 'subject') return (id) => [id.subject];
  if (ref === 'groups') return (id) => id.groups;
  // Only a verified address identifies its owner; compared case-insensitively, like the email condition.
  if (ref === 'email') return (id) => (id.email !== undefined && id.emailVerified ? [id.email.toLowerCase()] : undefined);
  if (!IDENTITY_FIELD.test(ref)) throw new TypeError(`"${ref}" is not an identity field (subject, email, groups, claims.<path>)`);
  // claims.<name>: the top-level claim named exactly <name> when there is one, else the dotted path (as rules read it).
  const read = claimReader(ref.slice('claims.'.length));
  return (id) => claimValues(id.claims, read);
}

function accepts(values: readonly string[] | undefined, value: string, lower: boolean): boolean {
  if (values === undefined || value === '') return false;
  const v = lower ? value.toLowerCase() : value;
  for (const x of values) if (x !== '' && x === v) return true;
  return false;
}

/** params: every named segment must equal (one of) its identity field. */
export function paramsCondition(spec: Readonly<Record<string, string>>, routeParams: readonly string[]): Condition {
  const checks = Object.entries(spec).map(([name, ref]) => {
    if (!routeParams.includes(name)) {
      throw new TypeError(`the route path names no segment {${name}}${routeParams.length ? ` (it has ${routeParams.map((p) => `{${p}}`).join(', ')})` : ''}`);
    }
    return { name, read: identityField(ref), lower: ref === 'email' };
  });
  return (i) => {
    if (!i.identity) return 'unauthenticated';
    const params = i.params?.() ?? {};
    for (const c of checks) {
      const value = params[c.name];
      const values = c.read(i.identity);
      if (values === undefined) return { reason: 'identity-field-missing', param: c.name };
      if (value === undefined || !accepts(values, value, c.lower)) return { reason: 'param-unauthorized', param: c.name };
    }
    return null;
  };
}

/** The key a query_params name is looked up under (the query is read with parseQuerySpellings). */
export function queryParamKey(name: string): string {
  return paramKeys(name)[0] as string;
}

/**
 * query_params: present, and every value of every spelling of the parameter (`;` separators, `name[]`, case,
 * surrounding space; normalize/query.ts paramKeys) must equal (one of) the field.
 */
export function queryParamsCondition(spec: Readonly<Record<string, string>>): Condition {
  const checks = Object.entries(spec).map(([name, ref]) => ({ name, key: queryParamKey(name), read: identityField(ref), lower: ref === 'email' }));
  return (i) => {
    if (!i.identity) return 'unauthenticated';
    const query = i.query?.() ?? null;
    for (const c of checks) {
      const values = c.read(i.identity);
      if (values === undefined) return { reason: 'identity-field-missing', param: c.name };
      const got = query?.get(c.key);
      if (got === undefined || got.length === 0) return { reason: 'query-param-missing', param: c.name };
      for (const v of got) if (!accepts(values, v, c.lower)) return { reason: 'query-param-unauthorized', param: c.name };
    }
    return null;
  };
}
