// A route's policy: deny rules first (any match → deny), then allow rules (any match → allow), else deny.
// Evaluation short-circuits on the hot path; reasons for every failing allow rule are gathered only on deny.
import { ConfigError, type ConfigReport, type AuthorizeConfig, type Config, type RouteConfig } from '../config/index.ts';
import { compileConditions, type Condition, type ConditionContext, type MfaSets } from './conditions.ts';
import { queryParamKey } from './params.ts';

type AuthzConfig = Config['authz'];
import type { PolicyInput } from './input.ts';
import { hasGroupsOverage, type Decision, type RuleReason } from '../core/index.ts';

/** An identity whose groups are unknown (Entra ID overage left unresolved) is denied everywhere. */
const OVERAGE: Decision = Object.freeze({ allow: false, rule: undefined, reasons: Object.freeze([{ rule: '-', reason: 'groups-overage' }]) as readonly RuleReason[] });



interface CompiledRule {
  readonly label: string;
  readonly conditions: ReadonlyArray<{ key: string; test: Condition }>;
  /** Built once: what a matching deny rule reports. */
  readonly matched: readonly RuleReason[];
}

export interface Policy {
  evaluate(input: PolicyInput): Decision;
  readonly allowRules: number;
  readonly denyRules: number;
  /** Some rule reads path or query parameters (the request path then passes them, lazily). */
  readonly usesParams: boolean;
  /** Folded names (queryParamKey) of the query parameters some rule reads: a form body must not name them. */
  readonly queryParams: ReadonlySet<string>;
  /**
   * Some rule reads the clock (a `time` window or a just-in-time `grant`): a decision it made can turn by
   * itself, so live connections on its route are judged again as time passes, not only on events.
   */
  readonly usesClock: boolean;
}

function compileRules(kind: 'allow' | 'deny', rules: AuthorizeConfig['allow'], ctx: ConditionContext): CompiledRule[] {
  return rules.map((rule, i) => {
    let conditions;
    try {
      conditions = compileConditions(rule, kind === 'deny' ? { ...ctx, inDeny: true } : ctx);
    } catch (err) {
      throw err instanceof ConfigError ? err.within([kind, i]) : err;
    }
    if (conditions.length === 0) throw new ConfigError('CFG_BAD_VALUE', [kind, i], 'a rule needs at least one condition (use authenticated: true)');
    if (kind === 'allow' && rule.risk_above !== undefined) throw new ConfigError('CFG_BAD_VALUE', [kind, i, 'risk_above'], 'risk_above is a deny-rule condition');
    const label = rule.name ?? `${kind}[${i}]`;
    const matched: RuleReason[] = [{ rule: label, reason: kind === 'deny' ? 'deny-rule-matched' : 'rule-matched' }];
    if (rule.risk_above !== undefined) matched.push({ rule: label, reason: 'risk-too-high' });
    return { label, conditions, matched };
  });
}

function holds(rule: CompiledRule, input: PolicyInput): boolean {
  for (const c of rule.conditions) if (c.test(input) !== null) return false;
  return true;
}

function failures(rule: CompiledRule, input: PolicyInput): RuleReason[] {
  const out: RuleReason[] = [];
  for (const c of rule.conditions) {
    const reason = c.test(input);
    if (reason === null) continue;
    out.push(typeof reason === 'string' ? { rule: rule.label, reason } : { rule: rule.label, reason: reason.reason, param: reason.param });
  }
  return out;
}

/** authz.mfa as sets (policy, step-up and metrics read them). Frozen holder; the sets are never changed. */
export function compileMfa(cfg: AuthzConfig['mfa']): MfaSets {
  return Object.freeze({ amr: new Set(cfg.amr), acr: new Set(cfg.acr) });
}

/** Throws ConfigError with `path` relative to the route's `authorize`. Frozen (state lives in closures). */
export function compilePolicy(cfg: AuthorizeConfig, ctx: ConditionContext): Policy {
  const deny = compileRules('deny', cfg.deny, ctx);
  const allow = compileRules('allow', cfg.allow, ctx);
  return Object.freeze<Policy>({
    allowRules: allow.length,
    denyRules: deny.length,
    usesParams: [...deny, ...allow].some((r) => r.conditions.some((c) => c.key === 'params' || c.key === 'query_params')),
    queryParams: new Set([...cfg.deny, ...cfg.allow].flatMap((r) => Object.keys(r.query_params ?? {}).map(queryParamKey))),
    usesClock: [...deny, ...allow].some((r) => r.conditions.some((c) => c.key === 'time' || c.key === 'grant')),
    evaluate(input) {
      if (input.identity && hasGroupsOverage(input.identity.claims)) return OVERAGE;
      for (const rule of deny) {
        if (holds(rule, input)) return { allow: false, rule: rule.label, reasons: rule.matched };
      }
      for (const rule of allow) {
        if (holds(rule, input)) return { allow: true, rule: rule.label, reasons: rule.matched };
      }
      const reasons = allow.flatMap((r) => failures(r, input));
      return { allow: false, rule: undefined, reasons: reasons.length ? reasons : [{ rule: '-', reason: 'no-allow-rule' }] };
    },
  });
}

/**
 * A route's authorize block (null: none); reports with `path` relative to the route. `devices`: whether
 * devices.inventory is configured (the device condition needs it).
 */
export function compileRoutePolicy(r: RouteConfig, ctx: ConditionContext, devices: boolean, report: ConfigReport): Policy | null {
  let policy: Policy | null = null;
  if (r.authorize !== undefined) {
    try {
      policy = compilePolicy(r.authorize, ctx);
      if (policy.allowRules === 0) report(new ConfigError('CFG_BAD_VALUE', ['authorize', 'allow'], 'at least one allow rule is needed (nothing would ever be allowed)'));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      report(err.within(['authorize']));
    }
  } else if (r.authenticate !== undefined) {
    const message = 'a route with authenticate needs authorize (allow: [{ authenticated: true }] means any verified identity)';
    report(new ConfigError('CFG_CONFLICT', ['authenticate'], message));
  }
  const usesDevice = [...(r.authorize?.allow ?? []), ...(r.authorize?.deny ?? [])].some((rule) => rule.device !== undefined);
  if (usesDevice && !devices) report(new ConfigError('CFG_CONFLICT', ['authorize'], 'the device condition needs devices.inventory'));
  return policy;
}
