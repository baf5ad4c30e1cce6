// The assess stage's risk engine: one score per request from the subject's profile, the client address (its
// GeoIP location), the device and recent failures. Synchronous with the memory store; a Promise with Redis.
import type { Identity } from '../authn/identity.ts';
import { newProfile, learn, type Observation, type Profile } from './profile.ts';
import type { RiskSettings } from './settings.ts';
import { assessSignals, type Assessment } from './signals.ts';
import type { ProfileStore } from './store.ts';

export type { Assessment, Signal, SignalName } from './signals.ts';
export { SIGNALS, scoreOf } from './signals.ts';
export { compileRisk, type RiskSettings } from './settings.ts';
export { MemoryProfileStore, RedisProfileStore, type ProfileStore } from './store.ts';

export interface RiskRequest {
  readonly clientIp: string;
  /** Inventory device id when one is resolved; otherwise the User-Agent stands in (a weak, spoofable hint). */
  readonly deviceId: string | undefined;
  readonly userAgent: string | undefined;
  readonly nowMs: number;
}

/** What assess computed, kept on the request until it is admitted (then the profile learns it). */
export interface RiskResult extends Assessment {
  readonly key: string;
  readonly observation: Observation;
}

export interface RiskEngine {
  readonly settings: RiskSettings;
  assess(identity: Identity, req: RiskRequest): RiskResult | Promise<RiskResult>;
  /** The request was admitted: the profile learns its address, country, device, hour and rate. */
  learn(result: RiskResult): void;
  recordFailure(clientIp: string, nowMs: number): void;
}

function deviceKey(req: RiskRequest): string {
  if (req.deviceId !== undefined) return `dev:${req.deviceId}`;
  // Bounded: a profile keeps at most max_entries of these.
  return req.userAgent === undefined ? 'ua:-' : `ua:${req.userAgent.slice(0, 200)}`;
}

export function createRiskEngine(settings: RiskSettings, store: ProfileStore): RiskEngine {
  store.configure(settings.store);
  const limits = { maxEntries: settings.maxEntries, decayMs: settings.signals.decayMs };
  const finish = (key: string, o: Observation, p: Profile | undefined, failures: number): RiskResult => ({
    ...assessSignals(settings.signals, p, o, failures),
    key,
    observation: o,
  });
  return {
    settings,
    assess(identity, req) {
      const key = `${identity.provider}:${identity.subject}`;
      const loc = settings.geo?.locate(req.clientIp);
      const o: Observation = {
        ip: req.clientIp,
        country: loc?.country,
        location: loc === undefined ? undefined : { lat: loc.lat, lon: loc.lon },
        device: deviceKey(req),
        nowMs: req.nowMs,
      };
      const p = store.get(key);
      const f = store.failures(req.clientIp, req.nowMs);
      if (!(p instanceof Promise) && !(f instanceof Promise)) return finish(key, o, p, f);
      return Promise.all([p, f]).then(([profile, failures]) => finish(key, o, profile, failures));
    },
    learn(r) {
      const current = store.get(r.key);
      const apply = (p: Profile | undefined) => store.set(r.key, learn(p ?? newProfile(r.observation.nowMs), r.observation, limits));
      if (current instanceof Promise) current.then(apply, () => undefined);
      else apply(current);
    },
    recordFailure(ip, nowMs) {
      store.recordFailure(ip, nowMs);
    },
  };
}
