// A route's policy: deny rules first (any match → deny), then allow rules (any match → allow), else deny.
// Evaluation short-circuits on the hot path; reasons for every failing allow rule are gathered only on deny.
import { ConfigPathError, type AuthorizeConfig } from '../config/index.ts';
import { compileConditions, type Condition, type ConditionContext } from './conditions.ts';
import type { PolicyInput } from './input.ts';
import type { Decision, RuleReason } from '../core/index.ts';



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
}

/** A rule that cannot be compiled; `path` is relative to the route's `authorize`. */
export class PolicyError extends ConfigPathError {}

function compileRules(kind: 'allow' | 'deny', rules: AuthorizeConfig['allow'], ctx: ConditionContext): CompiledRule[] {
  return rules.map((rule, i) => {
    let conditions;
    try {
      conditions = compileConditions(rule, kind === 'deny' ? { ...ctx, inDeny: true } : ctx);
    } catch (err) {
      throw new PolicyError((err as Error).message, [kind, i, (err as { key?: string }).key ?? '']);
    }
    if (conditions.length === 0) throw new PolicyError('a rule needs at least one condition (use authenticated: true)', [kind, i]);
    if (kind === 'allow' && rule.risk_above !== undefined) throw new PolicyError('risk_above is a deny-rule condition', [kind, i, 'risk_above']);
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

export function compilePolicy(cfg: AuthorizeConfig, ctx: ConditionContext): Policy {
  const deny = compileRules('deny', cfg.deny, ctx);
  const allow = compileRules('allow', cfg.allow, ctx);
  return {
    allowRules: allow.length,
    denyRules: deny.length,
    usesParams: [...deny, ...allow].some((r) => r.conditions.some((c) => c.key === 'params' || c.key === 'query_params')),
    evaluate(input) {
      for (const rule of deny) {
        if (holds(rule, input)) return { allow: false, rule: rule.label, reasons: rule.matched };
      }
      for (const rule of allow) {
        if (holds(rule, input)) return { allow: true, rule: rule.label, reasons: rule.matched };
      }
      const reasons = allow.flatMap((r) => failures(r, input));
      return { allow: false, rule: undefined, reasons: reasons.length ? reasons : [{ rule: '-', reason: 'no-allow-rule' }] };
    },
  };
}
