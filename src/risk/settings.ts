// The risk block compiled once at load: weights, thresholds and the GeoIP database. A route that uses risk
// (risk_above, step_up.when) without a risk block gets the defaults.
import { resolve } from 'node:path';
import { statSync } from 'node:fs';
import { type Config, type RiskConfig, configSchema, ConfigPathError } from '../config/index.ts';
import { loadGeo, type GeoLookup } from './geo.ts';
import type { SignalSettings } from './signals.ts';
import type { StoreLimits } from './store.ts';

export interface RiskSettings {
  readonly signals: SignalSettings;
  readonly store: StoreLimits;
  readonly maxEntries: number;
  readonly geo: GeoLookup | null;
  /** Identifies the database files (path, size, mtime): an unchanged one is reused on reload. */
  readonly geoKey: string;
  readonly allRoutes: boolean;
  /** A risk step-up needs a login no older than this (unless the route sets step_up.max_age). */
  readonly reauthWindowS: number;
}

/** A risk setting that cannot be used (e.g. an unreadable GeoIP file); `path` is relative to the config root. */
export class RiskConfigError extends ConfigPathError {}

function defaults(): RiskConfig {
  const parsed = configSchema.shape.risk.unwrap().parse({});
  return parsed;
}

/** null when nothing uses risk. Throws RiskConfigError (a config error at load) for an unusable database. */
export function compileRisk(config: Config, baseDir: string, previous: RiskSettings | null): RiskSettings | null {
  const usedByRoute = config.routes.some(
    (r) => r.step_up?.when !== undefined || (r.authorize?.deny ?? []).some((rule) => rule.risk_above !== undefined),
  );
  if (config.risk === undefined && !usedByRoute) return null;
  const c = config.risk ?? defaults();
  const files = c.geoip_db === undefined ? [] : (Array.isArray(c.geoip_db) ? c.geoip_db : [c.geoip_db]).map((f) => resolve(baseDir, f));
  let geo: GeoLookup | null = null;
  let geoKey = '';
  if (files.length > 0) {
    try {
      geoKey = files.map((f) => {
        const st = statSync(f);
        return `${f}|${st.size}|${st.mtimeMs}`;
      }).join('\n');
      geo = previous !== null && previous.geoKey === geoKey ? previous.geo : loadGeo(files);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new RiskConfigError(code ? `cannot read the GeoIP database (${code})` : (err as Error).message, ['risk', 'geoip_db']);
    }
  }
  return {
    signals: {
      weights: c.weights,
      travelKmh: c.travel_kmh,
      failureCount: c.auth_failures.count,
      volumeFactor: c.volume_factor,
      volumeMin: c.volume_min,
      learningRequests: c.learning.requests,
      learningMs: c.learning.period,
      decayMs: c.decay,
    },
    store: { maxSubjects: c.max_subjects, decayMs: c.decay, failureWindowMs: c.auth_failures.window },
    maxEntries: c.max_entries,
    geo,
    geoKey,
    allRoutes: c.all_routes,
    reauthWindowS: Math.round(c.reauth_window / 1000),
  };
}
