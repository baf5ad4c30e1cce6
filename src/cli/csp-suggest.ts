// The smallest change to a route's Content-Security-Policy that would have allowed what browsers reported:
// each reported (directive, blocked source) adds that source to the directive that governed it. Inline code
// becomes the hashes the gateway learned from the route's pages (`learn: true`), else 'unsafe-inline' with
// a warning; eval becomes 'unsafe-eval' (warned). Output: YAML to paste under the route.

export interface ObservedKey {
  directive: string;
  blocked: string;
  count: number;
  clients: number;
}

export interface SuggestInput {
  route: string;
  /** The route's policy as sent (directive → values). */
  policy: Readonly<Record<string, readonly string[]>>;
  violations: readonly ObservedKey[];
  learned: { 'script-src'?: readonly string[]; 'style-src'?: readonly string[] };
  learn: boolean;
  reportOnly: boolean | null;
}

export interface Suggestion {
  /** Only the directives that change, with their full new value. */
  directives: Record<string, string[]>;
  used: Array<ObservedKey & { allow: string; into: string }>;
  skipped: ObservedKey[];
  warnings: string[];
}

const REPORT_DIRECTIVES = new Set(['report-uri', 'report-to']);

/** script-src-elem → script-src; style-src-attr → style-src; others: none. */
function baseOf(directive: string): string | undefined {
  const m = /^(script-src|style-src)-(elem|attr)$/.exec(directive);
  return m?.[1];
}

export function suggest(input: SuggestInput, minClients: number): Suggestion {
  const policy = input.policy;
  const changed = new Map<string, string[]>();
  const warnings = new Set<string>();
  const used: Suggestion['used'] = [];
  const skipped: ObservedKey[] = [];
  const valuesOf = (d: string): string[] => changed.get(d) ?? [...(policy[d] ?? [])];

  for (const v of input.violations) {
    if (v.clients < minClients) {
      skipped.push(v);
      continue;
    }
    const base = baseOf(v.directive);
    const family = v.directive.startsWith('script-src') ? 'script-src' : v.directive.startsWith('style-src') ? 'style-src' : undefined;
    const attr = v.directive.endsWith('-attr');
    // The directive that governed it: itself, else (for -elem) its base, else a new one copied from its fallback.
    const into = v.directive in policy || changed.has(v.directive) ? v.directive : !attr && base !== undefined && base in policy ? base : v.directive;
    if (!(into in policy) && !changed.has(into)) changed.set(into, [...(policy[base ?? ''] ?? policy['default-src'] ?? [])]);
    let allow: string[];
    switch (v.blocked) {
      case "'inline'": {
        const hashes = family !== undefined && !attr ? (input.learned[family] ?? []) : [];
        if (hashes.length > 0) allow = [...hashes];
        else {
          allow = ["'unsafe-inline'"];
          warnings.add(
            attr
              ? `${v.directive}: inline event handlers (onclick=…) or style attributes need 'unsafe-inline'; hashes cannot allow them. Moving them into script files is safer.`
              : input.learn
                ? `${v.directive}: no inline hash learned yet; 'unsafe-inline' suggested. Load the route's pages through the gateway and run this again.`
                : `${v.directive}: 'unsafe-inline' allows any injected inline code. Set security_headers.csp.learn: true on route "${input.route}", load its pages, and run this again to get 'sha256-…' hashes instead.`,
          );
        }
        break;
      }
      case "'eval'":
        allow = ["'unsafe-eval'"];
        warnings.add(`${v.directive}: 'unsafe-eval' lets the page turn strings into code (eval, new Function).`);
        break;
      case "'wasm-eval'":
        allow = ["'wasm-unsafe-eval'"];
        break;
      case "'other'":
        skipped.push(v);
        continue;
      default:
        allow = [v.blocked];
    }
    const values = valuesOf(into).filter((x) => x !== "'none'");
    for (const a of allow) if (!values.includes(a)) values.push(a);
    // 'unsafe-inline' is ignored by browsers once a hash is present: keep hashes only if both were asked for.
    if (values.includes("'unsafe-inline'") && values.some((x) => x.startsWith("'sha256-"))) {
      warnings.add(`${into}: browsers ignore 'unsafe-inline' when hashes are listed; inline code without a learned hash stays blocked.`);
    }
    changed.set(into, values);
    used.push({ ...v, allow: allow.join(' '), into });
  }
  const directives: Record<string, string[]> = {};
  for (const [d, values] of changed) {
    if (REPORT_DIRECTIVES.has(d)) continue;
    const before = policy[d];
    if (before !== undefined && before.length === values.length && before.every((x, i) => x === values[i])) continue;
    directives[d] = values;
  }
  return { directives, used, skipped, warnings: [...warnings] };
}

/** The suggestion as YAML (to paste under the route) with the evidence as comments. */
export function suggestionYaml(input: SuggestInput, s: Suggestion, minClients: number): string {
  const lines: string[] = [];
  lines.push(`# zt-gateway csp suggest --route ${input.route}: ${input.violations.length} reported key(s), ${s.used.length} with at least ${minClients} client(s)`);
  if (s.used.length > 0) {
    lines.push('#   clients   count  directive          blocked → allowed in');
    for (const u of s.used) lines.push(`#   ${String(u.clients).padStart(7)} ${String(u.count).padStart(7)}  ${u.directive.padEnd(18)} ${u.blocked} → ${u.into} ${u.allow}`);
  }
  for (const k of s.skipped) lines.push(`#   left out: ${k.directive} ${k.blocked} (${k.clients} client(s), ${k.count} report(s))`);
  for (const w of s.warnings) lines.push(`# warning: ${w}`);
  const names = Object.keys(s.directives).sort();
  if (names.length === 0) {
    lines.push('# The policy already allows everything reported: nothing to add.');
    lines.push('security_headers:');
    lines.push('  csp:');
    lines.push('    report_only: false   # enforce once no new reports arrive');
    return `${lines.join('\n')}\n`;
  }
  lines.push('security_headers:');
  lines.push('  csp:');
  if (input.learn) lines.push('    learn: true');
  lines.push('    # report_only: false   # enforce once this policy draws no new reports');
  lines.push('    directives:');
  for (const d of names) lines.push(`      ${d}: [${(s.directives[d] ?? []).map((v) => JSON.stringify(v)).join(', ')}]`);
  return `${lines.join('\n')}\n`;
}
