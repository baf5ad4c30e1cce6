// Maturity per NIST SP 800-207 tenet, from the findings. The method (also in the README):
//   score = max(0, 100 − Σ penalty) over the DISTINCT finding ids that count against the tenet
//   (high 40, medium 20, low 10, info 0): ten routes without a rate limit are one gap, not ten);
//   stage by the CISA Zero Trust Maturity Model v2.0 names: ≥ 90 optimal, ≥ 70 advanced, ≥ 40 initial,
//   below that traditional. The overall score is the mean of the seven tenet scores.
// It grades what the config can show; the IdP, device management and the network are outside its view.
import { FINDINGS, TENETS, type Finding, type Severity, type TenetId } from './catalog.ts';

export type Stage = 'traditional' | 'initial' | 'advanced' | 'optimal';

export interface TenetScore {
  readonly tenet: TenetId;
  readonly name: string;
  readonly text: string;
  readonly score: number;
  readonly stage: Stage;
  /** Distinct finding ids counted against it, worst first. */
  readonly findings: readonly string[];
}

const PENALTY: Record<Severity, number> = { high: 40, medium: 20, low: 10, info: 0 };
const RANK: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

export const SCORING_METHOD =
  'per tenet: 100 minus 40 per distinct high, 20 per medium, 10 per low finding id (info 0), at least 0; ' +
  'stage (CISA ZTMM v2.0): >=90 optimal, >=70 advanced, >=40 initial, else traditional; overall: mean of the tenets';

export function stageOf(score: number): Stage {
  if (score >= 90) return 'optimal';
  if (score >= 70) return 'advanced';
  if (score >= 40) return 'initial';
  return 'traditional';
}

export function scoreTenets(findings: readonly Finding[]): { tenets: TenetScore[]; overall: { score: number; stage: Stage } } {
  // The worst severity seen for each id (cors-insecure-origin is high with credentials, medium without).
  const worst = new Map<string, Severity>();
  for (const f of findings) {
    const seen = worst.get(f.id);
    if (seen === undefined || RANK[f.severity] < RANK[seen]) worst.set(f.id, f.severity);
  }
  const tenets = TENETS.map((t) => {
    const ids = [...worst]
      .filter(([id]) => (FINDINGS[id as keyof typeof FINDINGS].tenets as readonly number[]).includes(t.id))
      .sort((a, b) => RANK[a[1]] - RANK[b[1]] || a[0].localeCompare(b[0]));
    const score = Math.max(0, 100 - ids.reduce((sum, [, sev]) => sum + PENALTY[sev], 0));
    return { tenet: t.id, name: t.name, text: t.text, score, stage: stageOf(score), findings: ids.map(([id]) => id) };
  });
  const score = Math.round(tenets.reduce((sum, t) => sum + t.score, 0) / tenets.length);
  return { tenets, overall: { score, stage: stageOf(score) } };
}

export function sortFindings(findings: readonly Finding[]): Finding[] {
  // Stable: within one severity, config order (the checks run top to bottom).
  return findings.map((f, i) => ({ f, i })).sort((a, b) => RANK[a.f.severity] - RANK[b.f.severity] || a.i - b.i).map(({ f }) => f);
}
