// Rule conditions, compiled once into small predicates. Each returns null when it holds, or the reason
// (from the closed vocabulary) why it does not.
import { compileAddressSet, canonicalPath } from '../normalize/index.ts';
import { ConfigError, type RuleConfig } from '../config/index.ts';
import { claimReader, type Identity, type Reason } from '../core/index.ts';
import type { Condition } from './input.ts';

export type { Condition };
import { compileTimeWindow } from './time.ts';
import { paramsCondition, queryParamsCondition } from './params.ts';

/** null when the condition holds; the reason (and for params, the parameter) when it does not. */

export interface ConditionContext {
  /** The route's own path prefix ('' for /): `paths` must lie under it. */
  routePath: string;
  mfa: { amr: ReadonlySet<string>; acr: ReadonlySet<string> };
  /**
   * Compiling a deny rule: email conditions then match unverified addresses too, since an unverified
   * address must never be a way around a deny (it still never grants anything in an allow rule).
   */
  inDeny?: boolean;
  /** Names under `grants` in the config: a rule may only require one of these. */
  grants?: ReadonlySet<string>;
  /** Named segments of the route path (`params` may bind only these). */
  routeParams?: readonly string[];
}

const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
type Scalar = string | number | boolean;

function spiffeMatcher(patterns: string[]): (id: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (!p.startsWith('spiffe://')) throw new TypeError(`"${p}" is not a SPIFFE ID (spiffe://trust-domain/path)`);
    if (p.endsWith('/*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  return (id) => exact.has(id) || prefixes.some((pre) => id.startsWith(pre));
}

function claimTest(matcher: NonNullable<RuleConfig['claims']>[string]): (value: unknown) => boolean {
  if (Array.isArray(matcher)) return (v) => matcher.includes(v as Scalar);
  if (typeof matcher !== 'object') return (v) => v === matcher;
  if ('equals' in matcher) return (v) => v === matcher.equals;
  if ('one_of' in matcher) return (v) => matcher.one_of.includes(v as Scalar);
  const needle = matcher.contains;
  // Arrays (roles) or space-separated strings (OAuth scope) both "contain".
  return (v) => (Array.isArray(v) ? v.includes(needle) : typeof v === 'string' && typeof needle === 'string' && v.split(' ').includes(needle));
}

/** Compiles the conditions of one rule; throws ConfigError (path: the condition key) on bad values. */
export function compileConditions(rule: RuleConfig, ctx: ConditionContext): Array<{ key: string; test: Condition }> {
  const out: Array<{ key: string; test: Condition }> = [];
  const add = (key: string, test: Condition) => out.push({ key, test });
  const wrap = (key: string, build: () => Condition) => {
    try {
      add(key, build());
    } catch (err) {
      if (err instanceof ConfigError) throw err.within([key]);
      throw new ConfigError('CFG_BAD_VALUE', [key], (err as Error).message);
    }
  };

  if (rule.authenticated !== undefined) {
    const want = rule.authenticated;
    add('authenticated', (i) => ((i.identity !== null) === want ? null : want ? 'unauthenticated' : 'authenticated'));
  }
  if (rule.subject !== undefined) {
    const set = new Set(list(rule.subject));
    add('subject', (i) => (i.identity && set.has(i.identity.subject) ? null : i.identity ? 'subject-unauthorized' : 'unauthenticated'));
  }
  if (rule.email !== undefined) {
    const set = new Set(list(rule.email).map((e) => e.toLowerCase()));
    add('email', (i) => {
      if (!i.identity) return 'unauthenticated';
      if (i.identity.email === undefined || (!i.identity.emailVerified && !ctx.inDeny)) return 'email-unverified';
      return set.has(i.identity.email.toLowerCase()) ? null : 'email-unauthorized';
    });
  }
  if (rule.email_domain !== undefined) {
    const set = new Set(list(rule.email_domain).map((d) => d.toLowerCase().replace(/^@/, '')));
    add('email_domain', (i) => {
      if (!i.identity) return 'unauthenticated';
      const email = i.identity.email;
      if (email === undefined || (!i.identity.emailVerified && !ctx.inDeny)) return 'email-unverified';
      // No @ (or nothing before it) is no address: never treat the whole value as a domain.
      const at = email.lastIndexOf('@');
      return at > 0 && set.has(email.slice(at + 1).toLowerCase()) ? null : 'email-domain-unauthorized';
    });
  }
  if (rule.groups !== undefined) {
    const set = new Set(list(rule.groups));
    add('groups', (i) => (i.identity?.groups.some((g) => set.has(g)) ? null : i.identity ? 'groups-unauthorized' : 'unauthenticated'));
  }
  if (rule.all_groups !== undefined) {
    const need = rule.all_groups;
    add('all_groups', (i) => (i.identity && need.every((g) => i.identity?.groups.includes(g)) ? null : i.identity ? 'groups-unauthorized' : 'unauthenticated'));
  }
  if (rule.claims !== undefined) {
    // `a.b`: the top-level claim named exactly `a.b` when there is one, else the path a → b (own properties only).
    const tests = Object.entries(rule.claims).map(([path, m]) => ({ read: claimReader(path), test: claimTest(m) }));
    add('claims', (i) => {
      if (!i.identity) return 'unauthenticated';
      const claims = i.identity.claims;
      return tests.every((t) => t.test(t.read(claims))) ? null : 'claims-unauthorized';
    });
  }
  const idField = (key: 'issuer' | 'provider' | 'method', reason: Reason, values: string | string[] | undefined) => {
    if (values === undefined) return;
    const set = new Set<string>(list(values));
    add(key, (i) => {
      if (!i.identity) return 'unauthenticated';
      const v = i.identity[key];
      return v !== undefined && set.has(v) ? null : reason;
    });
  };
  idField('issuer', 'issuer-unauthorized', rule.issuer);
  idField('provider', 'provider-unauthorized', rule.provider);
  idField('method', 'method-unauthorized', rule.method);
  if (rule.spiffe_id !== undefined) {
    const spiffe = rule.spiffe_id;
    wrap('spiffe_id', () => {
      const match = spiffeMatcher(list(spiffe));
      return (i) => (i.identity?.spiffeId !== undefined && match(i.identity.spiffeId) ? null : i.identity ? 'spiffe-id-unauthorized' : 'unauthenticated');
    });
  }
  if (rule.trust_domain !== undefined) {
    const set = new Set(list(rule.trust_domain));
    add('trust_domain', (i) => {
      const id = i.identity?.spiffeId;
      if (id === undefined) return i.identity ? 'trust-domain-unauthorized' : 'unauthenticated';
      return set.has(id.slice('spiffe://'.length).split('/', 1)[0] as string) ? null : 'trust-domain-unauthorized';
    });
  }
  if (rule.service_callers !== undefined) {
    const callers = rule.service_callers;
    wrap('service_callers', () => {
      const match = spiffeMatcher(list(callers));
      return (i) =>
        i.identity?.method === 'mtls' && i.identity.spiffeId !== undefined && match(i.identity.spiffeId) ? null : 'service-caller-unauthorized';
    });
  }
  if (rule.source_ip !== undefined) {
    const cidrs = list(rule.source_ip);
    wrap('source_ip', () => {
      const set = compileAddressSet(cidrs);
      return (i) => (set.has(i.clientIp) ? null : 'source-ip-unauthorized');
    });
  }
  if (rule.http_methods !== undefined) {
    const set = new Set(list(rule.http_methods));
    add('http_methods', (i) => (set.has(i.method) ? null : 'http-method-unauthorized'));
  }
  if (rule.paths !== undefined) {
    const specs = list(rule.paths);
    wrap('paths', () => {
      const compiled = specs.map((spec) => {
        const exact = spec.startsWith('=');
        const canonical = canonicalPath(exact ? spec.slice(1) : spec).path;
        const prefix = exact ? canonical : canonical.replace(/\/$/, '');
        const inRoute = ctx.routePath === '' || prefix === ctx.routePath || prefix.startsWith(`${ctx.routePath}/`);
        if (!inRoute) throw new TypeError(`path "${spec}" is not under the route's path "${ctx.routePath || '/'}"`);
        return { exact, prefix };
      });
      return (i) =>
        compiled.some((c) => (c.exact ? i.path === c.prefix : c.prefix === '' || i.path === c.prefix || i.path.startsWith(`${c.prefix}/`)))
          ? null
          : 'path-unauthorized';
    });
  }
  if (rule.time !== undefined) {
    const spec = rule.time;
    wrap('time', () => {
      const test = compileTimeWindow(spec);
      return (i) => (test(i.nowMs) ? null : 'time-unauthorized');
    });
  }
  if (rule.mfa === true) {
    add('mfa', (i) => {
      const id = i.identity;
      if (!id) return 'unauthenticated';
      return usedMfa(id, ctx.mfa) ? null : 'mfa-required';
    });
  }
  if (rule.params !== undefined) {
    const spec = rule.params;
    wrap('params', () => paramsCondition(spec, ctx.routeParams ?? []));
  }
  if (rule.query_params !== undefined) {
    const spec = rule.query_params;
    wrap('query_params', () => queryParamsCondition(spec));
  }
  if (rule.device !== undefined) {
    const needTrusted = rule.device === 'trusted';
    add('device', (i) => {
      const d = i.device();
      if (d === undefined) return 'device-unknown';
      if (d.revoked) return 'device-revoked';
      return needTrusted && !d.trusted ? 'device-untrusted' : null;
    });
  }
  if (rule.grant !== undefined) {
    const names = list(rule.grant);
    wrap('grant', () => {
      for (const n of names) if (!ctx.grants?.has(n)) throw new ConfigError('CFG_UNKNOWN_NAME', [], `unknown grant "${n}" (define it under grants)`);
      return (i) => {
        const id = i.identity;
        if (!id) return 'unauthenticated';
        return names.some((n) => i.grants?.hasGrant(id.provider, id.subject, n, i.nowMs) === true) ? null : 'grant-required';
      };
    });
  }
  if (rule.risk_above !== undefined) {
    const above = rule.risk_above;
    // Holds only on a computed score: a route that scores risk always has one for an authenticated caller.
    add('risk_above', (i) => (i.risk !== undefined && i.risk > above ? null : 'risk-too-high'));
  }
  return out;
}

/** Whether the caller's login used MFA: an MFA method in amr, or an acr the config counts as MFA. */
export type MfaSets = ConditionContext['mfa'];

export function usedMfa(id: Identity, mfa: MfaSets): boolean {
  return id.amr.some((a) => mfa.amr.has(a)) || (id.acr !== undefined && mfa.acr.has(id.acr));
}
