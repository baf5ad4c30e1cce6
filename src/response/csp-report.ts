// Parses what browsers POST to a CSP report endpoint into normalized violations: the legacy
// `application/csp-report` ({"csp-report": {...}}) and the Reporting API's `application/reports+json`
// ([{type: "csp-violation", body: {...}}]). Every field is attacker-written: only bounded, normalized
// values come out (a directive name, a blocked origin or keyword, a document path without its query).

export interface CspViolation {
  /** effective-directive (or the first token of violated-directive), lower case: `script-src-elem`. */
  readonly directive: string;
  /** `'inline'`, `'eval'`, `'wasm-eval'`, a scheme such as `data:`, an origin, or `'other'`. */
  readonly blocked: string;
  /** The document's path, without query or fragment ('' when unreadable). */
  readonly documentPath: string;
}

export type CspReportFormat = 'csp-report' | 'reports+json';

/** At most this many violations are read from one body (the rest is ignored). */
const MAX_PER_BODY = 100;
const DIRECTIVE = /^[a-z][a-z-]{0,39}$/;

export class CspReportError extends Error {
  override readonly name = 'CspReportError';
}

/** Throws CspReportError for a body that is not JSON or holds no CSP report of its format. */
export function parseCspReport(format: CspReportFormat, text: string): CspViolation[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CspReportError('the body is not JSON');
  }
  if (format === 'csp-report') {
    const r = isObject(json) ? json['csp-report'] : undefined;
    if (!isObject(r)) throw new CspReportError('expected {"csp-report": {…}}');
    const v = violation(r['effective-directive'], r['violated-directive'], r['blocked-uri'], r['document-uri']);
    if (v === null) throw new CspReportError('the report names no directive');
    return [v];
  }
  if (!Array.isArray(json)) throw new CspReportError('expected a JSON array of reports');
  const out: CspViolation[] = [];
  for (const report of json.slice(0, MAX_PER_BODY)) {
    if (!isObject(report) || report.type !== 'csp-violation' || !isObject(report.body)) continue; // other report types
    const b = report.body;
    const v = violation(b.effectiveDirective, b.violatedDirective, b.blockedURL, b.documentURL ?? report.url);
    if (v !== null) out.push(v);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function violation(effective: unknown, violated: unknown, blockedUri: unknown, documentUri: unknown): CspViolation | null {
  const raw = typeof effective === 'string' && effective !== '' ? effective : typeof violated === 'string' ? (violated.trim().split(/\s+/, 1)[0] ?? '') : '';
  const directive = raw.toLowerCase();
  if (!DIRECTIVE.test(directive)) return null;
  return { directive, blocked: blockedSource(blockedUri), documentPath: pathOf(documentUri) };
}

/** What to allow: a keyword for inline and eval, a scheme for data:/blob:, else the URL's origin. */
export function blockedSource(value: unknown): string {
  if (typeof value !== 'string' || value.length > 4096) return "'other'";
  const v = value.trim().toLowerCase();
  if (v === 'inline' || v === 'eval' || v === 'wasm-eval') return `'${v}'`;
  if (v === 'data' || v === 'blob' || v === 'mediastream' || v === 'filesystem') return `${v}:`;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return "'other'";
  }
  const scheme = url.protocol;
  if (scheme === 'http:' || scheme === 'https:' || scheme === 'ws:' || scheme === 'wss:') return url.origin;
  if (/^[a-z][a-z0-9+.-]{0,20}:$/.test(scheme)) return scheme;
  return "'other'";
}

function pathOf(value: unknown): string {
  if (typeof value !== 'string' || value.length > 8192) return '';
  try {
    return new URL(value).pathname.slice(0, 256);
  } catch {
    return '';
  }
}
