// Zero-trust progress figures from a running gateway's admin /metrics (Prometheus text format 0.0.4).
// The parser reads samples only (comments and # HELP/# TYPE are skipped); it is small on purpose: the four
// metrics it needs are plain counters and a gauge.
import { readBoundedBody } from '../../core/index.ts';
import { request } from 'undici';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})/;

/** Parses the sample lines; a line it cannot read is an error (a truncated or non-Prometheus answer). */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const name = NAME.exec(line)?.[0];
    if (name === undefined) throw new SyntaxError(`metrics line ${i + 1}: no metric name`);
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      rest = rest.slice(1);
      if (/^\s*\}/.test(rest)) rest = rest.replace(/^\s*\}/, '');
      else {
        for (;;) {
          const m = LABEL.exec(rest);
          if (!m) throw new SyntaxError(`metrics line ${i + 1}: bad label set`);
          labels[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
          rest = rest.slice(m[0].length);
          if (m[3] === '}') break;
          if (/^\s*\}/.test(rest)) {
            rest = rest.replace(/^\s*\}/, ''); // a trailing comma before } is allowed
            break;
          }
        }
      }
    }
    const valueText = rest.trim().split(/\s+/)[0] ?? '';
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (valueText === '' || (Number.isNaN(value) && valueText !== 'NaN')) throw new SyntaxError(`metrics line ${i + 1}: bad value`);
    samples.push({ name, labels, value });
  });
  return samples;
}

export interface ZeroTrustFigures {
  readonly url: string;
  /** Share (0–1) of authenticated requests whose caller used MFA; null when the metric is absent or zero. */
  readonly mfa_share: number | null;
  readonly authenticated_requests: number | null;
  /** Share (0–1) of service-to-service calls over mTLS. */
  readonly mtls_share: number | null;
  readonly service_requests: number | null;
  /** Denied service-to-service calls (lateral-movement attempts), total and by route. */
  readonly service_denied: number | null;
  readonly service_denied_by_route: Readonly<Record<string, number>>;
  readonly grants_active: number | null;
  /** Metrics the gateway did not export. */
  readonly missing: readonly string[];
}

export const METRICS = {
  authenticated: 'zt_authenticated_requests_total',
  service: 'zt_service_requests_total',
  denied: 'zt_service_denied_total',
  grants: 'zt_grants_active',
} as const;

export function zeroTrustFigures(url: string, samples: readonly Sample[]): ZeroTrustFigures {
  const of = (name: string) => samples.filter((s) => s.name === name && Number.isFinite(s.value));
  const missing = Object.values(METRICS).filter((n) => of(n).length === 0);
  const share = (name: string, label: string) => {
    const all = of(name);
    if (all.length === 0) return { share: null, total: null };
    const total = sum(all);
    return { share: total > 0 ? sum(all.filter((s) => s.labels[label] === 'true')) / total : null, total };
  };
  const mfa = share(METRICS.authenticated, 'mfa');
  const mtls = share(METRICS.service, 'mtls');
  const denied = of(METRICS.denied);
  const byRoute: Record<string, number> = {};
  for (const s of denied) byRoute[s.labels.route ?? ''] = (byRoute[s.labels.route ?? ''] ?? 0) + s.value;
  const grants = of(METRICS.grants);
  return {
    url,
    mfa_share: mfa.share,
    authenticated_requests: mfa.total,
    mtls_share: mtls.share,
    service_requests: mtls.total,
    service_denied: denied.length > 0 ? sum(denied) : null,
    service_denied_by_route: byRoute,
    grants_active: grants.length > 0 ? sum(grants) : null,
    missing,
  };
}

const sum = (samples: readonly Sample[]) => samples.reduce((t, s) => t + s.value, 0);

const MAX_BYTES = 16 * 1024 * 1024;

/**
 * GETs the metrics page once (5 s to the headers and between chunks, 16 MB at most). `token`: the admin token,
 * sent as a bearer credential (a gateway's /metrics needs it when admin.metrics is authenticated).
 */
export async function fetchMetrics(url: string, token?: string): Promise<ZeroTrustFigures> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError('--metrics-url must be http:// or https://');
  const headers: Record<string, string> = { accept: 'text/plain', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const res = await request(parsed, { method: 'GET', headersTimeout: 5_000, bodyTimeout: 5_000, headers });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`${url} answered ${res.statusCode}`);
  }
  const body = await readBoundedBody(res, MAX_BYTES, () => new Error(`${url}: more than ${MAX_BYTES} bytes`));
  return zeroTrustFigures(url, parsePrometheusText(body.toString('utf8')));
}
