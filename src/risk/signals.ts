// The risk signals of one request against the subject's profile. Each signal that fires adds its configured
// weight; the score is capped at 1. Novelty signals wait for the learning period; travel and failures do not.
import { distanceKm } from './distance.ts';
import { knows, utcHour, type Observation, type Profile } from './profile.ts';

export const SIGNALS = ['new_ip', 'new_country', 'impossible_travel', 'unknown_device', 'auth_failures', 'unusual_hours', 'high_volume'] as const;
export type SignalName = (typeof SIGNALS)[number];

export interface Signal {
  readonly name: SignalName;
  readonly weight: number;
  /** e.g. travel speed; never a credential. */
  readonly detail?: Readonly<Record<string, number | string>>;
}

export interface Assessment {
  readonly score: number;
  readonly signals: readonly Signal[];
}

export interface SignalSettings {
  readonly weights: Readonly<Record<SignalName, number>>;
  readonly travelKmh: number;
  readonly failureCount: number;
  readonly volumeFactor: number;
  readonly volumeMin: number;
  readonly learningRequests: number;
  readonly learningMs: number;
  readonly decayMs: number;
}

/** Locations this close are one place (GeoIP city accuracy): never travel. */
const SAME_PLACE_KM = 100;

/** An hour is usual when it and its neighbours hold at least this share of the subject's requests. */
const USUAL_HOUR_SHARE = 0.05;

export function scoreOf(signals: readonly Signal[]): number {
  let sum = 0;
  for (const s of signals) sum += s.weight;
  // Two decimals: 0.1 + 0.2 should read 0.3 in audit records and compare as configured.
  return Math.min(1, Math.round(sum * 100) / 100);
}

function unusualHour(hours: readonly number[], hour: number): boolean {
  let total = 0;
  for (const h of hours) total += h;
  if (total <= 0) return false;
  const near = (hours[(hour + 23) % 24] ?? 0) + (hours[hour] ?? 0) + (hours[(hour + 1) % 24] ?? 0);
  return near < USUAL_HOUR_SHARE * total;
}

export function assessSignals(s: SignalSettings, p: Profile | undefined, o: Observation, failures: number): Assessment {
  const out: Signal[] = [];
  const add = (name: SignalName, detail?: Record<string, number | string>) => {
    const weight = s.weights[name];
    if (weight > 0) out.push(detail ? { name, weight, detail } : { name, weight });
  };
  const learning = p === undefined || p.seen < s.learningRequests || o.nowMs - p.created < s.learningMs;
  if (p !== undefined && !learning) {
    if (!knows(p.ips, o.ip, o.nowMs, s.decayMs)) add('new_ip');
    if (o.country !== undefined && !knows(p.countries, o.country, o.nowMs, s.decayMs)) add('new_country', { country: o.country });
    if (!knows(p.devices, o.device, o.nowMs, s.decayMs)) add('unknown_device');
    const hour = utcHour(o.nowMs);
    if (unusualHour(p.hours, hour)) add('unusual_hours', { hour_utc: hour });
    const inMinute = (Math.floor(o.nowMs / 60_000) === p.minute ? p.minuteCount : 0) + 1;
    if (p.rate > 0 && inMinute >= s.volumeMin && inMinute > s.volumeFactor * p.rate) {
      add('high_volume', { per_minute: inMinute, usual: Math.round(p.rate * 10) / 10 });
    }
  }
  if (p?.last && o.location !== undefined) {
    const km = distanceKm(o.location, p.last);
    // At least a second apart: two requests in the same millisecond from different continents are still travel.
    const hours = Math.max(o.nowMs - p.last.t, 1000) / 3_600_000;
    const kmh = km / hours;
    if (km > SAME_PLACE_KM && kmh > s.travelKmh) add('impossible_travel', { km: Math.round(km), kmh: Math.round(kmh) });
  }
  if (failures >= s.failureCount) add('auth_failures', { count: failures });
  return { score: scoreOf(out), signals: out };
}
