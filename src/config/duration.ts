const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DURATION_PATTERN = /^(\d+)(ms|s|m|h|d)$/;

/** Parses `30s`, `8h`, `250ms` into milliseconds. Throws a TypeError for anything else. */
export function parseDuration(text: string): number {
  const m = DURATION_PATTERN.exec(text);
  if (!m) throw new TypeError(`invalid duration "${text}" (use e.g. 250ms, 30s, 5m, 8h, 1d)`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}
