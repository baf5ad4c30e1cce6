// A subject's behaviour profile: plain JSON (stored as is in Redis), bounded per subject, learned only from
// admitted requests (a refused or challenged request never teaches the profile its new address).
export interface Profile {
  v: 1;
  /** First admitted request, ms since the epoch. */
  created: number;
  /** Admitted requests seen. */
  seen: number;
  /** [value, last seen ms], most recent last; at most max_entries each. */
  ips: Array<[string, number]>;
  countries: Array<[string, number]>;
  devices: Array<[string, number]>;
  /** Weighted request counts per UTC hour (24), halved every `decay`. */
  hours: number[];
  decayedAt: number;
  /** The last located request. */
  last: { lat: number; lon: number; t: number } | null;
  /** Requests in the current minute (epoch minute) and the usual per active minute (moving average). */
  minute: number;
  minuteCount: number;
  rate: number;
}

export interface Observation {
  readonly ip: string;
  readonly country: string | undefined;
  readonly location: { lat: number; lon: number } | undefined;
  readonly device: string;
  readonly nowMs: number;
}

export interface ProfileLimits {
  readonly maxEntries: number;
  readonly decayMs: number;
}

export function newProfile(nowMs: number): Profile {
  return {
    v: 1, created: nowMs, seen: 0, ips: [], countries: [], devices: [], hours: new Array<number>(24).fill(0),
    decayedAt: nowMs, last: null, minute: Math.floor(nowMs / 60_000), minuteCount: 0, rate: 0,
  };
}

/** True when `value` was seen within the decay period. */
export function knows(list: ReadonlyArray<readonly [string, number]>, value: string, nowMs: number, decayMs: number): boolean {
  for (const [v, t] of list) if (v === value) return nowMs - t <= decayMs;
  return false;
}

export const utcHour = (ms: number): number => Math.floor(ms / 3_600_000) % 24;

function touch(list: Array<[string, number]>, value: string, nowMs: number, limits: ProfileLimits): void {
  const lastEntry = list[list.length - 1];
  // The common case: the same value as last time (no reordering, nothing can be over the bound).
  if (lastEntry !== undefined && lastEntry[0] === value && nowMs - (list[0] as [string, number])[1] <= limits.decayMs) {
    lastEntry[1] = nowMs;
    return;
  }
  const i = list.findIndex(([v]) => v === value);
  if (i >= 0) list.splice(i, 1);
  list.push([value, nowMs]);
  // Forget what decayed, then the least recently seen beyond the bound.
  while (list.length > 0 && nowMs - (list[0] as [string, number])[1] > limits.decayMs) list.shift();
  if (list.length > limits.maxEntries) list.splice(0, list.length - limits.maxEntries);
}

/** Learns one admitted request (mutates and returns the profile). */
export function learn(p: Profile, o: Observation, limits: ProfileLimits): Profile {
  const minute = Math.floor(o.nowMs / 60_000);
  if (minute !== p.minute) {
    if (p.minuteCount > 0) p.rate = p.rate === 0 ? p.minuteCount : 0.8 * p.rate + 0.2 * p.minuteCount;
    p.minute = minute;
    p.minuteCount = 0;
  }
  p.minuteCount++;
  const sinceDecay = o.nowMs - p.decayedAt;
  if (sinceDecay > 3_600_000) {
    const f = 0.5 ** (sinceDecay / limits.decayMs);
    for (let h = 0; h < 24; h++) p.hours[h] = (p.hours[h] ?? 0) * f;
    p.decayedAt = o.nowMs;
  }
  const hour = utcHour(o.nowMs);
  p.hours[hour] = (p.hours[hour] ?? 0) + 1;
  p.seen++;
  touch(p.ips, o.ip, o.nowMs, limits);
  touch(p.devices, o.device, o.nowMs, limits);
  if (o.country !== undefined) touch(p.countries, o.country, o.nowMs, limits);
  if (o.location !== undefined) p.last = { lat: o.location.lat, lon: o.location.lon, t: o.nowMs };
  return p;
}

/** A profile read back from Redis: anything that is not this shape is treated as no profile. */
export function isProfile(v: unknown): v is Profile {
  if (v === null || typeof v !== 'object') return false;
  const p = v as Partial<Profile>;
  return (
    p.v === 1 && typeof p.created === 'number' && typeof p.seen === 'number' && Array.isArray(p.ips) && Array.isArray(p.countries) &&
    Array.isArray(p.devices) && Array.isArray(p.hours) && p.hours.length === 24 && typeof p.minute === 'number' &&
    typeof p.minuteCount === 'number' && typeof p.rate === 'number' && typeof p.decayedAt === 'number'
  );
}
