// Cheap counters for the request path, exported through prom-client at scrape time. prom-client's own
// labelled inc() hashes and validates the labels on every call (~400 ns each, also through labels()
// children); a pre-resolved cell is a property increment. Measured: 4 updates per request cost ~1.5-2 µs
// through prom-client, ~30 ns here.
import { Counter, type Registry } from 'prom-client';

export interface Cell {
  n: number;
}

/** A prom-client Counter whose values live in cells resolved once per label set. */
export class CellCounter<L extends string> {
  readonly #cells = new Map<string, { labels: Record<L, string>; cell: Cell }>();
  readonly #labelNames: readonly L[];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    this.#labelNames = labelNames;
    const cells = this.#cells;
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

  /** The cell for one label set; resolve it once (at build time, or once per new value) and keep it. */
  cell(labels: Record<L, string>): Cell {
    let key = '';
    for (const l of this.#labelNames) key += `${labels[l]}\u0000`;
    let entry = this.#cells.get(key);
    if (entry === undefined) this.#cells.set(key, (entry = { labels: { ...labels }, cell: { n: 0 } }));
    return entry.cell;
  }
}
