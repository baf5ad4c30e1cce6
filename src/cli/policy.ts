// `zt-gateway explain` and `zt-gateway test <policies.test.yaml>`.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { identityFromJson, REASONS } from '../core/index.ts';
import { explain, type Explanation, type ExplainRequest } from './explain.ts';
import { compileConfig, type CompiledConfig } from '../pipeline/index.ts';
import { SIGNALS, scoreOf, type SignalName } from '../risk/index.ts';
import { ConfigError, loadConfigFile } from '../config/index.ts';
import type { Output } from './validate.ts';

async function loadCompiled(file: string, io: Output): Promise<CompiledConfig | undefined> {
  try {
    return await compileConfig(loadConfigFile(file));
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) io.err(line);
      return undefined;
    }
    throw err;
  }
}

function parseTime(text: string | undefined): number {
  if (text === undefined) return Date.now();
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new TypeError(`invalid time "${text}" (use ISO 8601, e.g. 2026-11-23T10:00:00+01:00)`);
  return ms;
}

function print(e: Explanation, io: Output): void {
  for (const w of e.warnings) io.err(`warning: ${w}`);
  io.out(`route:    ${e.route}`);
  io.out(`decision: ${e.decision}${e.rule ? ` (${e.rule})` : ''}`);
  io.out(`result:   ${e.status === 'forward' ? 'forwarded to the upstream' : `answered ${e.status}`}`);
  for (const r of e.reasons) io.out(`reason:   ${r.rule}: ${r.reason}${r.param !== undefined ? ` (parameter ${r.param})` : ''}`);
  if (e.risk) io.out(`risk:     ${e.risk.score}${e.risk.signals.map((s) => ` ${s.name}(+${s.weight})`).join('')}`);
  if (e.step_up) {
    const why = [e.step_up.risk_above !== undefined ? `risk above ${e.step_up.risk_above}` : undefined, e.step_up.acr ? `acr ${e.step_up.acr}` : undefined, e.step_up.max_age !== undefined ? `login within ${e.step_up.max_age}s` : undefined];
    io.out(`step-up:  ${why.filter(Boolean).join(', ')}: a fresh login (browser) or 401 (API)`);
  }
}

/** --risk 0.7, or --signals a,b scored with the config's weights (capped at 1). */
function explainRisk(compiled: CompiledConfig, risk: string | undefined, signals: string | undefined): ExplainRequest['risk'] {
  if (risk !== undefined && signals !== undefined) throw new TypeError('give --risk or --signals, not both');
  if (risk !== undefined) {
    const score = Number(risk);
    if (risk.trim() === '' || !Number.isFinite(score) || score < 0 || score > 1) throw new TypeError(`invalid --risk "${risk}" (0 to 1)`);
    return { score, signals: [] };
  }
  if (signals === undefined) return undefined;
  const weights = compiled.risk?.signals.weights;
  if (weights === undefined) throw new TypeError('--signals needs a config that uses risk');
  const list = signals.split(',').map((name) => {
    const n = name.trim() as SignalName;
    if (!SIGNALS.includes(n)) throw new TypeError(`unknown signal "${name}" (one of ${SIGNALS.join(', ')})`);
    return { name: n, weight: weights[n] };
  });
  return { score: scoreOf(list), signals: list };
}

export interface ExplainArgs {
  config: string;
  route: string;
  identity: string | undefined;
  method: string;
  path: string;
  ip: string;
  time: string | undefined;
  device: string | undefined;
  json: boolean;
  risk?: string | undefined;
  signals?: string | undefined;
}

export async function explainCommand(a: ExplainArgs, io: Output): Promise<number> {
  const compiled = await loadCompiled(a.config, io);
  // 1 means "refused by policy": a config that cannot be loaded is an input error (2), never a deny.
  if (!compiled) return 2;
  try {
    const identity = a.identity === undefined ? null : identityFromJson(JSON.parse(readFileSync(a.identity, 'utf8')) as Record<string, unknown>);
    const risk = explainRisk(compiled, a.risk, a.signals);
    const e = explain(compiled, a.route, identity, {
      method: a.method.toUpperCase(), path: a.path, ip: a.ip, nowMs: parseTime(a.time), deviceId: a.device, risk,
    });
    if (a.json) io.out(JSON.stringify(e, null, 2));
    else print(e, io);
    return e.status === 'forward' ? 0 : 1;
  } catch (err) {
    io.err(`explain: ${(err as Error).message ?? String(err)}`);
    return 2;
  }
}

const testFile = z.strictObject({
  tests: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        route: z.string().min(1),
        identity: z.record(z.string(), z.unknown()).nullable().optional(),
        request: z
          .strictObject({
            method: z.string().default('GET'),
            path: z.string().default('/'),
            ip: z.string().default('127.0.0.1'),
            time: z.string().optional(),
            device: z.string().optional(),
            risk: z.number().min(0).max(1).optional(),
          })
          .prefault({}),
        expect: z.enum(['allow', 'deny']),
        reason: z.enum(REASONS).optional(),
      }),
    )
    .min(1),
});

export async function policyTestCommand(file: string, configFile: string, io: Output): Promise<number> {
  const compiled = await loadCompiled(configFile, io);
  // Like an unreadable test file (2): the tests could not run, which is not the same as a mismatch (1).
  if (!compiled) return 2;
  let cases;
  try {
    const parsed = testFile.safeParse(parse(readFileSync(file, 'utf8')));
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      io.err(`${file}: ${i?.path.join('.')}: ${i?.message}`);
      return 2;
    }
    cases = parsed.data.tests;
  } catch (err) {
    io.err(`${file}: ${(err as Error).message}`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  for (const t of cases) {
    let ok: boolean;
    let detail: string;
    try {
      const identity = t.identity ? identityFromJson(t.identity) : null;
      const e = explain(compiled, t.route, identity, {
        method: t.request.method.toUpperCase(),
        path: t.request.path,
        ip: t.request.ip,
        nowMs: parseTime(t.request.time),
        deviceId: t.request.device,
        risk: t.request.risk === undefined ? undefined : { score: t.request.risk, signals: [] },
      });
      // would_deny forwards, but the policy said deny: a test of the policy expects deny.
      const got = e.decision === 'allow' || e.decision === 'public' ? 'allow' : 'deny';
      const reasonOk = t.reason === undefined || e.reasons.some((r) => r.reason === t.reason);
      ok = got === t.expect && reasonOk;
      detail = `${e.decision}${e.rule ? ` by ${e.rule}` : ''}; reasons: ${e.reasons.map((r) => `${r.rule}:${r.reason}`).join(', ') || '-'}`;
    } catch (err) {
      ok = false;
      detail = `error: ${(err as Error).message}`;
    }
    if (ok) passed++;
    else failed++;
    (ok ? io.out : io.err)(`${ok ? 'ok  ' : 'FAIL'} ${t.name} (expected ${t.expect}${t.reason ? ` with ${t.reason}` : ''}; got ${detail})`);
  }
  io.out(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
