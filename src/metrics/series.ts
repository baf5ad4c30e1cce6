// Cheap counters and histograms for the request path, exported through prom-client at scrape time.
// prom-client's own labelled inc()/observe() hash and validate the labels on every call, also through
// labels() children (~0.3-0.4 µs each; ~1.5-2 µs for one request's updates); a pre-resolved cell is a
// property increment (a whole request's metrics, request histogram included: ~70-90 ns, measured with
// recordRequest in a loop: bench/record-request.ts).
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';

export interface Cell {
  n: number;
}

/** Cells resolved once per label set; the prom-client metric reads them at scrape time. */
abstract class LabelledCells<L extends string> {
  protected readonly cells = new Map<string, { labels: Record<L, string>; cell: Cell }>();
  readonly #labelNames: readonly L[];

  constructor(labelNames: readonly L[]) {
    this.#labelNames = labelNames;
  }

  /** The cell for one label set; resolve it once (at build time, or once per new value) and keep it. */
  cell(labels: Record<L, string>): Cell {
    let key = '';
    for (const l of this.#labelNames) key += `${labels[l]}\u0000`;
    let entry = this.cells.get(key);
    if (entry === undefined) this.cells.set(key, (entry = { labels: { ...labels }, cell: { n: 0 } }));
    return entry.cell;
  }
}

/** A prom-client Counter whose values live in cells resolved once per label set. */
export class CellCounter<L extends string> extends LabelledCells<L> {
  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    super(labelNames);
    const cells = this.cells;
    new Counter({
      name,
      help,
      labelNames: [...labelNames],
      registers: [registry],
      collect() {
        // Runs on every scrape: rebuild the exported values from the cells (counters only ever grow).
        this.reset();
        for (const { labels, cell } of cells.values()) this.inc(labels, cell.n);
      },
    });
  }
}

/** One label set's histogram: cumulative buckets are computed at scrape time. */
export interface HistogramCell {
  observe(value: number): void;
}

interface HistogramCounts {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

type Sample = { metricName: string; labels: Record<string, string | number>; value: number };

/**
 * A histogram whose label sets (any number of labels) are resolved once into cells, exported as
 * prom-client's JSON metric shape (what its own Histogram returns from get()), so the registry prints it and
 * the cluster aggregator sums it. prom-client's labelled observe() costs ~300 ns; a cell's is a bucket scan
 * and two additions.
 */
export class CellHistogram<L extends string> {
  readonly #cells = new Map<string, HistogramCounts>();
  readonly #labelNames: readonly L[];
  readonly #bounds: readonly number[];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[], bounds: readonly number[]) {
    this.#labelNames = labelNames;
    this.#bounds = bounds;
    const cells = this.#cells;
    const get = async () => {
      const values: Sample[] = [];
      for (const c of cells.values()) {
        let cumulative = 0;
        bounds.forEach((le, i) => {
          cumulative += c.counts[i] as number;
          values.push({ metricName: `${name}_bucket`, labels: { ...c.labels, le }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { ...c.labels, le: '+Inf' }, value: c.count });
        values.push({ metricName: `${name}_sum`, labels: { ...c.labels }, value: c.sum });
        values.push({ metricName: `${name}_count`, labels: { ...c.labels }, value: c.count });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    };
    // Not a prom-client class, but the same metric contract (name, help, type, aggregator, get()).
    registry.registerMetric({ name, help, type: 'histogram', aggregator: 'sum', get } as unknown as Metric);
  }

  /** The cell for one label set; resolve it once (at build time, or once per new value) and keep it. */
  cell(labels: Record<L, string>): HistogramCell {
    let key = '';
    for (const l of this.#labelNames) key += `${labels[l]}\u0000`;
    let c = this.#cells.get(key);
    if (c === undefined) this.#cells.set(key, (c = { labels: { ...labels }, counts: new Float64Array(this.#bounds.length), sum: 0, count: 0 }));
    const cell = c;
    const bounds = this.#bounds;
    return {
      observe(v: number): void {
        let i = 0;
        while (i < bounds.length && v > (bounds[i] as number)) i++;
        if (i < bounds.length) cell.counts[i] = (cell.counts[i] as number) + 1;
        cell.sum += v;
        cell.count++;
      },
    };
  }
}

/** A prom-client Gauge whose values live in cells resolved once per label set (set at scrape time). */
export class CellGauge<L extends string> extends LabelledCells<L> {
  /** aggregator: how the cluster primary merges the workers' values (a state such as health: 'min'). */
  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[], aggregator: 'sum' | 'min' | 'max' = 'sum') {
    super(labelNames);
    const cells = this.cells;
    new Gauge({
      name,
      help,
      labelNames: [...labelNames],
      registers: [registry],
      aggregator,
      collect() {
        this.reset();
        for (const { labels, cell } of cells.values()) this.set(labels, cell.n);
      },
    });
  }
}
