// One evaluation path for `zt-gateway explain` and policy test files: the same compiled route policy the
// gateway runs, fed with a described caller and request instead of a live one.
import type { Identity, RuleReason } from '../core/index.ts';
import { stepUpNeeded, type CompiledConfig } from '../pipeline/index.ts';
import { isIP } from 'node:net';
import { plainAddress, canonicalTarget, parseQuerySpellings } from '../normalize/index.ts';
import { extractParams, matchTemplate } from '../routing/index.ts';

export interface ExplainRequest {
  method: string;
  path: string;
  ip: string;
  nowMs: number;
  deviceId: string | undefined;
  /** A given risk score (--risk, or the weights of --signals); undefined: the route scores nothing. */
  risk?: { score: number; signals: ReadonlyArray<{ name: string; weight: number }> } | undefined;
}

export interface Explanation {
  route: string;
  decision: 'allow' | 'deny' | 'would_deny' | 'public' | 'unauthenticated' | 'step_up';
  /** What the gateway would do: forward, or answer with this status. */
  status: number | 'forward';
  rule: string | undefined;
  reasons: readonly RuleReason[];
  warnings: string[];
  risk?: { score: number; signals: ReadonlyArray<{ name: string; weight: number }> };
  /** The step-up that would be asked for: a fresh login with this acr / no older than max_age (browser), or a 401. */
  step_up?: { acr: string | undefined; risk_above?: number; max_age?: number };
}

export function explain(compiled: CompiledConfig, routeName: string, identity: Identity | null, req: ExplainRequest): Explanation {
  const route = compiled.routes.find((r) => r.name === routeName);
  if (!route) throw new TypeError(`no route named "${routeName}"`);
  // --path may carry a query (`/invoices?tenant=acme`) for query_params conditions.
  const target = canonicalTarget(req.path);
  const path = target.matchPath;
  // One client address (as the gateway would see it), not a CIDR.
  if (isIP(plainAddress(req.ip)) === 0) throw new TypeError(`invalid --ip "${req.ip}"`);
  const warnings: string[] = [];
  const under = route.template
    ? matchTemplate(route.template, path, route.exact)
    : route.exact ? path === route.path : route.path === '' || path === route.path || path.startsWith(`${route.path}/`);
  if (!under) warnings.push(`path ${path} is not under route ${route.name} (${route.exact ? '=' : ''}${route.path || '/'}): the router would not send it there`);
  if (route.methods && !route.methods.has(req.method)) warnings.push(`method ${req.method} is not in the route's methods`);

  const base = { route: route.name, warnings, ...(req.risk && route.scoresRisk ? { risk: req.risk } : {}) };
  if (req.risk && !route.scoresRisk) warnings.push(`route ${route.name} does not score risk (no risk_above, step_up.when or risk.all_routes)`);
  const score = route.scoresRisk ? req.risk?.score : undefined;
  if (route.public && route.policy === null) return { ...base, decision: 'public', status: 'forward', rule: undefined, reasons: [] };
  if (!route.public && identity === null) {
    return { ...base, decision: 'unauthenticated', status: 401, rule: undefined, reasons: [{ rule: '-', reason: 'unauthenticated' }] };
  }
  if (route.policy === null) return { ...base, decision: 'unauthenticated', status: 401, rule: undefined, reasons: [] };
  const device = req.deviceId === undefined ? undefined : compiled.devices?.inventory.byId(req.deviceId);
  const d = route.policy.evaluate({
    identity, method: req.method, path, clientIp: req.ip, nowMs: req.nowMs, device: () => device,
    params: () => extractParams(route.template, target.path, route.exact),
    query: () => parseQuerySpellings(target.query),
    risk: score,
  });
  // The gateway's own predicate and order: a needed step-up is answered before the policy runs.
  const need = identity === null ? undefined : stepUpNeeded(compiled, route, identity, score, Math.floor(req.nowMs / 1000));
  if (need !== undefined) {
    if (!d.allow && route.mode !== 'report-only') warnings.push(`after the step-up, rule ${d.rule ?? '-'} still denies (${d.reasons.map((r) => r.reason).join(', ')})`);
    const riskAbove = need.byRisk ? route.stepUp?.riskAbove : undefined;
    const stepUp = { acr: need.acr, ...(riskAbove !== undefined ? { risk_above: riskAbove } : {}), ...(need.maxAgeS !== undefined ? { max_age: need.maxAgeS } : {}) };
    return { ...base, decision: 'step_up', status: 401, rule: undefined, reasons: [], step_up: stepUp };
  }
  if (d.allow) return { ...base, decision: route.public ? 'public' : 'allow', status: 'forward', rule: d.rule, reasons: d.reasons };
  if (route.mode === 'report-only') return { ...base, decision: 'would_deny', status: 'forward', rule: d.rule, reasons: d.reasons };
  return { ...base, decision: 'deny', status: 403, rule: d.rule, reasons: d.reasons };
}
