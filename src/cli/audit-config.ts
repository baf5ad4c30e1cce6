// `zt-gateway audit-config --config f [--strict] [--json] [--metrics-url URL]`: the zero-trust posture of a
// config. Exit 0, or 1 when the config is invalid, the metrics cannot be read, or (--strict) any finding is high.
import { compileConfig } from '../pipeline/index.ts';
import { ConfigError, loadConfigFile } from '../config/index.ts';
import { SEVERITIES, type Finding, type Severity } from './posture/catalog.ts';
import { postureFindings } from './posture/checks.ts';
import { fetchMetrics, type ZeroTrustFigures } from './posture/metrics.ts';
import { SCORING_METHOD, scoreTenets, sortFindings, type TenetScore } from './posture/score.ts';
import type { Output } from './validate.ts';

export interface AuditArgs {
  config: string;
  strict: boolean;
  json: boolean;
  metricsUrl: string | undefined;
}

export interface PostureReport {
  config: string;
  routes: number;
  summary: Record<Severity, number>;
  findings: Finding[];
  tenets: TenetScore[];
  maturity: { score: number; stage: string; method: string };
  metrics?: ZeroTrustFigures | { url: string; error: string };
}

export async function auditConfigCommand(args: AuditArgs, io: Output, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let report: PostureReport;
  try {
    const loaded = loadConfigFile(args.config, env);
    const compiled = await compileConfig(loaded); // the same checks as `validate` and `start`: an invalid config gets no report
    const findings = sortFindings(postureFindings(loaded));
    const { tenets, overall } = scoreTenets(findings);
    const summary = { high: 0, medium: 0, low: 0, info: 0 };
    for (const f of findings) summary[f.severity]++;
    report = { config: args.config, routes: compiled.routes.length, summary, findings, tenets, maturity: { ...overall, method: SCORING_METHOD } };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const line of err.message.split('\n')) io.err(line);
    io.err(`${args.config}: invalid config, no posture report`);
    return 1;
  }
  let metricsFailed = false;
  if (args.metricsUrl !== undefined) {
    try {
      report.metrics = await fetchMetrics(args.metricsUrl, env.ZT_ADMIN_TOKEN); // as `zt-gateway admin` reads it
    } catch (err) {
      metricsFailed = true;
      report.metrics = { url: args.metricsUrl, error: (err as Error).message };
      io.err(`zt-gateway audit-config: cannot read metrics from ${args.metricsUrl}: ${(err as Error).message}`);
    }
  }
  if (args.json) io.out(JSON.stringify(report, null, 2));
  else printReport(report, io);
  if (metricsFailed) return 1;
  return args.strict && report.summary.high > 0 ? 1 : 0;
}

const percent = (share: number | null) => (share === null ? 'n/a' : `${(share * 100).toFixed(1)} %`);

function printReport(r: PostureReport, io: Output): void {
  io.out(`zero-trust posture of ${r.config} (${r.routes} route${r.routes === 1 ? '' : 's'})`);
  io.out('');
  if (r.findings.length === 0) io.out('no findings');
  for (const f of r.findings) {
    const where = [f.route ? `route "${f.route}"` : f.provider ? `provider "${f.provider}"` : '', f.path, f.line ? `line ${f.line}` : '']
      .filter(Boolean)
      .join(', ');
    io.out(`${f.severity.toUpperCase().padEnd(6)} ${f.id}${where ? ` (${where})` : ''}`);
    io.out(`       ${f.message}`);
    io.out(`       fix: ${f.fix}`);
  }
  io.out('');
  io.out('maturity per NIST SP 800-207 tenet (score 0-100, CISA ZTMM stage):');
  for (const t of r.tenets) {
    io.out(`  ${t.tenet} ${t.name.padEnd(21)} ${String(t.score).padStart(3)} ${t.stage.padEnd(11)} ${t.findings.join(', ')}`.trimEnd());
  }
  io.out(`  overall                 ${String(r.maturity.score).padStart(3)} ${r.maturity.stage}`);
  io.out(`  (${r.maturity.method})`);
  if (r.metrics) {
    io.out('');
    io.out(`zero-trust progress at ${r.metrics.url}:`);
    if ('error' in r.metrics) io.out(`  unavailable: ${r.metrics.error}`);
    else {
      const m = r.metrics;
      io.out(`  requests with MFA:             ${percent(m.mfa_share)} of ${m.authenticated_requests ?? 'n/a'} authenticated`);
      io.out(`  service calls over mTLS:       ${percent(m.mtls_share)} of ${m.service_requests ?? 'n/a'}`);
      const routes = Object.entries(m.service_denied_by_route).map(([route, n]) => `${route}: ${n}`).join(', ');
      io.out(`  denied service calls:          ${m.service_denied ?? 'n/a'}${routes ? ` (${routes})` : ''}`);
      io.out(`  active just-in-time grants:    ${m.grants_active ?? 'n/a'}`);
      if (m.missing.length > 0) io.out(`  not exported by this gateway:  ${m.missing.join(', ')}`);
    }
  }
  io.out('');
  io.out(`findings: ${SEVERITIES.map((s) => `${r.summary[s]} ${s}`).join(', ')}`);
}
