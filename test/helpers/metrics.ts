// Scrapes a Prometheus text exposition and reads samples by name and exact label set.
import { request } from 'undici';

export interface Scrape {
  readonly text: string;
  readonly contentType: string;
  /** The sample value, or undefined when no sample has exactly these labels. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every sample of a metric name (any labels). */
  samples(name: string): Array<{ labels: Record<string, string>; value: number }>;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function key(labels: Record<string, string>): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

export function parseMetrics(text: string, contentType = ''): Scrape {
  const byName = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = l[2] as string;
    const list = byName.get(m[1] as string) ?? [];
    list.push({ labels, value: Number(m[3]) });
    byName.set(m[1] as string, list);
  }
  return {
    text,
    contentType,
    value(name, labels = {}) {
      const k = key(labels);
      return byName.get(name)?.find((s) => key(s.labels) === k)?.value;
    },
    samples: (name) => byName.get(name) ?? [],
  };
}

export async function scrape(adminUrl: string): Promise<Scrape> {
  const res = await request(`${adminUrl}/metrics`);
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${text}`);
  return parseMetrics(text, String(res.headers['content-type']));
}
