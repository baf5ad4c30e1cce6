// Reads a Prometheus text exposition (what /metrics answers) back into samples: for tools that summarize
// a running gateway's figures (e.g. the share of MFA logins) and for tests.
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  /** The sample with exactly these labels, or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every sample of a name, any labels. */
  samples(name: string): readonly Sample[];
  /** The sum of a name's samples whose labels include `where` (0 when there are none). */
  sum(name: string, where?: Record<string, string>): number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

const unescape = (v: string) => v.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));

function sameLabels(a: Readonly<Record<string, string>>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** Throws on a line that is neither a comment nor a sample. */
export function parseExposition(text: string): Exposition {
  const byName = new Map<string, Sample[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) throw new Error(`not a Prometheus sample line: ${line.slice(0, 120)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = unescape(l[2] as string);
    const list = byName.get(m[1] as string) ?? [];
    list.push({ labels, value: Number(m[3]) });
    byName.set(m[1] as string, list);
  }
  return {
    value: (name, labels = {}) => byName.get(name)?.find((s) => sameLabels(s.labels, labels))?.value,
    samples: (name) => byName.get(name) ?? [],
    sum: (name, where = {}) =>
      (byName.get(name) ?? []).filter((s) => Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0),
  };
}
