// The risk block compiled once at load: weights, thresholds and the GeoIP database. A route that uses risk
// (risk_above, step_up.when) without a risk block gets the defaults.
import { resolve } from 'node:path';
import { statSync } from 'node:fs';
import { type Config, type RiskConfig, type RouteConfig, configSchema, ConfigError } from '../config/index.ts';
import type { GeoLookup } from './geo.ts';
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

function defaults(): RiskConfig {
  const parsed = configSchema.shape.risk.unwrap().parse({});
  return parsed;
}

/**
 * null when nothing uses risk. Throws ConfigError (path from the config root) for an unusable database.
 * Frozen, except `geo`: the database reader is shared with the next config when its files are unchanged.
 * Asynchronous: the database reader (maxmind) is imported only when a new database is to be read.
 */
export async function compileRisk(config: Config, baseDir: string, previous: RiskSettings | null): Promise<RiskSettings | null> {
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
      geo = previous !== null && previous.geoKey === geoKey ? previous.geo : (await import('./geo.ts')).loadGeo(files);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError('CFG_BAD_FILE', ['risk', 'geoip_db'], code ? `cannot read the GeoIP database (${code})` : (err as Error).message);
    }
  }
  return Object.freeze({
    signals: Object.freeze({
      weights: Object.freeze({ ...c.weights }),
      travelKmh: c.travel_kmh,
      failureCount: c.auth_failures.count,
      volumeFactor: c.volume_factor,
      volumeMin: c.volume_min,
      learningRequests: c.learning.requests,
      learningMs: c.learning.period,
      decayMs: c.decay,
    }),
    store: Object.freeze({ maxSubjects: c.max_subjects, decayMs: c.decay, failureWindowMs: c.auth_failures.window }),
    maxEntries: c.max_entries,
    geo,
    geoKey,
    allRoutes: c.all_routes,
    reauthWindowS: Math.round(c.reauth_window / 1000),
  });
}

/** Whether the assess stage scores this route; throws ConfigError (path relative to the route) for a public one. */
export function compileRouteRisk(r: RouteConfig, risk: RiskSettings | null): boolean {
  const riskRule = (r.authorize?.deny ?? []).some((rule) => rule.risk_above !== undefined);
  if (r.public && (riskRule || r.step_up?.when)) {
    throw new ConfigError('CFG_CONFLICT', ['public'], 'risk_above needs an authenticated route (there is no subject to score)');
  }
  return !r.public && risk !== null && (riskRule || r.step_up?.when !== undefined || risk.allRoutes);
}
