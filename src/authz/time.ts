// Time-window conditions: days of the week and hours in an IANA time zone, compiled once.
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const WEEKDAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

export type TimeTest = (nowMs: number) => boolean;

function dayIndex(name: string): number {
  const i = DAY_NAMES.indexOf(name.trim().toLowerCase() as (typeof DAY_NAMES)[number]);
  if (i < 0) throw new TypeError(`unknown day "${name}" (use mon, tue, … or ranges like mon-fri)`);
  return i;
}

/** `mon-fri`, `sat-sun`, `fri-mon` (wraps), or single days. */
export function parseDays(specs: readonly string[]): Set<number> {
  const days = new Set<number>();
  for (const spec of specs) {
    for (const part of spec.split(',')) {
      const [a, b, extra] = part.split('-');
      if (a === undefined || a.trim() === '' || extra !== undefined) throw new TypeError(`invalid day range "${spec}"`);
      const from = dayIndex(a);
      const to = b === undefined ? from : dayIndex(b);
      for (let d = from; ; d = (d + 1) % 7) {
        days.add(d);
        if (d === to) break;
      }
    }
  }
  return days;
}

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  if (h > 24 || m > 59 || (h === 24 && m !== 0)) throw new TypeError(`invalid time "${hhmm}"`);
  return h * 60 + m;
}

export function compileTimeWindow(spec: { days?: string | string[]; hours?: string; tz: string }): TimeTest {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', { timeZone: spec.tz, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  } catch {
    throw new TypeError(`unknown time zone "${spec.tz}"`);
  }
  const days = spec.days === undefined ? null : parseDays(Array.isArray(spec.days) ? spec.days : [spec.days]);
  let from = 0;
  let to = 24 * 60;
  if (spec.hours !== undefined) {
    const [a = '', b = ''] = spec.hours.split('-');
    from = minutes(a);
    to = minutes(b);
    if (from === to) throw new TypeError(`empty hours range "${spec.hours}"`);
  }
  return (nowMs) => {
    let weekday = 0;
    let minute = 0;
    for (const p of format.formatToParts(nowMs)) {
      if (p.type === 'weekday') weekday = WEEKDAY_INDEX[p.value] ?? 0;
      else if (p.type === 'hour') minute += Number(p.value) * 60;
      else if (p.type === 'minute') minute += Number(p.value);
    }
    // A window like 22:00-06:00 wraps past midnight; its early part belongs to the previous day.
    if (from < to) return (days === null || days.has(weekday)) && minute >= from && minute < to;
    if (minute >= from) return days === null || days.has(weekday);
    if (minute < to) return days === null || days.has((weekday + 6) % 7);
    return false;
  };
}
