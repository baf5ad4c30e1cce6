// The risk engine on its own: each signal against a real behaviour profile and the real GeoLite2 database,
// with request times given explicitly (the hour and rate signals depend on them).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema, type ConfigInput } from '../../src/config/schema.ts';
import type { Identity } from '../../src/core/identity.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { compileRisk, createRiskEngine, MemoryProfileStore, type RiskEngine, type RiskResult } from '../../src/risk/index.ts';
import { loadGeo, isUnlocatable } from '../../src/risk/geo.ts';
import { tempDir } from '../helpers/gateway.ts';
import { GEOIP_V4, GEOIP_V6, IP_DE, IP_GB, IP_IE, IP_JP, IP_UNKNOWN } from '../helpers/geoip.ts';

const WEIGHTS = { new_ip: 0.11, new_country: 0.12, impossible_travel: 0.5, unknown_device: 0.13, auth_failures: 0.14, unusual_hours: 0.16, high_volume: 0.17 };
const T0 = Date.UTC(2026, 10, 23, 10, 0, 0); // a Monday, 10:00 UTC
const MIN = 60_000;
const HOUR = 60 * MIN;

async function settings(risk: NonNullable<ConfigInput['risk']>) {
  const config = configSchema.parse({ listen: { address: '127.0.0.1:0', plaintext: true }, risk } satisfies ConfigInput);
  const s = await compileRisk(config, '/', null);
  if (s === null) throw new Error('no risk settings');
  return s;
}

async function engine(extra: NonNullable<ConfigInput['risk']> = {}): Promise<{ e: RiskEngine; store: MemoryProfileStore }> {
  const s = await settings({ geoip_db: [GEOIP_V4, GEOIP_V6], weights: WEIGHTS, learning: { requests: 3, period: '0s' }, ...extra });
  const store = new MemoryProfileStore(s.store);
  return { e: createRiskEngine(s, store), store };
}

const who = (subject: string): Identity => ({
  subject, provider: 'corp', issuer: undefined, method: 'jwt', email: undefined, emailVerified: false, groups: [], claims: {},
  spiffeId: undefined, authTime: undefined, amr: [], acr: undefined, expiresAt: undefined,
});

interface Req { ip?: string; ua?: string; device?: string; at: number }
function assess(e: RiskEngine, subject: string, r: Req): RiskResult {
  const out = e.assess(who(subject), { clientIp: r.ip ?? IP_GB, userAgent: r.ua ?? 'Firefox/140', deviceId: r.device, nowMs: r.at });
  if (out instanceof Promise) throw new Error('the memory store answers synchronously');
  return out;
}
/** Assesses and admits (the profile learns it). */
function admit(e: RiskEngine, subject: string, r: Req): RiskResult {
  const out = assess(e, subject, r);
  e.learn(out);
  return out;
}
const names = (r: RiskResult) => r.signals.map((s) => s.name).sort();
/** Three admitted requests from Bracknell with the usual browser, a minute apart, from T0. */
function learned(e: RiskEngine, subject: string, ip = IP_GB): void {
  for (let i = 0; i < 3; i++) admit(e, subject, { ip, at: T0 + i * MIN });
}

describe('risk signals', () => {
  it('a known subject from its usual address, browser and hour scores 0', async () => {
    const { e } = await engine();
    learned(e, 'u');
    const r = assess(e, 'u', { at: T0 + 5 * MIN });
    expect(r.score).toBe(0);
    expect(r.signals).toEqual([]);
  });

  it('new IP adds its configured weight (same country, same place: nothing else)', async () => {
    const { e } = await engine();
    learned(e, 'u', '10.0.0.1');
    const r = assess(e, 'u', { ip: '10.0.0.2', at: T0 + 5 * MIN });
    expect(r.signals).toEqual([{ name: 'new_ip', weight: 0.11 }]);
    expect(r.score).toBe(0.11);
  });

  it('new country adds its weight on top of new IP (no travel: the profile has no location yet)', async () => {
    const { e } = await engine();
    learned(e, 'u', '10.0.0.1');
    const r = assess(e, 'u', { ip: IP_DE, at: T0 + 5 * MIN });
    expect(names(r)).toEqual(['new_country', 'new_ip']);
    expect(r.signals.find((s) => s.name === 'new_country')?.detail).toEqual({ country: 'DE' });
    expect(r.score).toBe(0.23);
  });

  it('impossible travel: Bracknell then Tokyo minutes later; the same trip over two days is not', async () => {
    const { e } = await engine();
    admit(e, 'u', { ip: IP_GB, at: T0 });
    admit(e, 'u', { ip: IP_JP, at: T0 + 5 * MIN }); // still learning: travel counts anyway
    const back = assess(e, 'u', { ip: IP_GB, at: T0 + 10 * MIN });
    expect(names(back)).toEqual(['impossible_travel']);
    const t = back.signals[0]?.detail as { km: number; kmh: number };
    expect(t.km).toBeGreaterThan(9000);
    expect(t.km).toBeLessThan(10_000);
    expect(t.kmh).toBeGreaterThan(100_000);
    expect(back.score).toBe(0.5);
    expect(names(assess(e, 'u', { ip: IP_GB, at: T0 + 5 * MIN + 48 * HOUR }))).not.toContain('impossible_travel');
  });

  it('travel speed is configurable: Bracknell to Dublin in one hour is travel only above travel_kmh', async () => {
    const slow = (await engine({ travel_kmh: 300 })).e;
    const fast = (await engine({ travel_kmh: 1000 })).e;
    for (const e of [slow, fast]) admit(e, 'u', { ip: IP_GB, at: T0 });
    expect(names(assess(slow, 'u', { ip: IP_IE, at: T0 + HOUR }))).toContain('impossible_travel');
    expect(names(assess(fast, 'u', { ip: IP_IE, at: T0 + HOUR }))).not.toContain('impossible_travel');
  });

  it('loopback, private and unknown addresses have no location: never travel, never a new country', async () => {
    const { e } = await engine();
    learned(e, 'u', IP_JP);
    for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '::1', 'fd00::1', '100.64.0.1', IP_UNKNOWN, '::ffff:10.0.0.1']) {
      const r = assess(e, 'u', { ip, at: T0 + 5 * MIN });
      expect(names(r), ip).toEqual(['new_ip']);
    }
    // Learning a private address keeps the last real location: Tokyo → LAN → Bracknell is still travel.
    admit(e, 'u', { ip: '10.1.2.3', at: T0 + 6 * MIN });
    expect(names(assess(e, 'u', { ip: IP_GB, at: T0 + 7 * MIN }))).toContain('impossible_travel');
  });

  it('unknown device: another User-Agent, or an inventory device id the subject never used', async () => {
    const { e } = await engine();
    learned(e, 'u');
    expect(assess(e, 'u', { ua: 'curl/8', at: T0 + 5 * MIN }).signals).toEqual([{ name: 'unknown_device', weight: 0.13 }]);
    expect(names(assess(e, 'u', { device: 'laptop-7', at: T0 + 5 * MIN }))).toEqual(['unknown_device']);
  });

  it('recent authentication failures from the client address: from the configured count, within the window', async () => {
    const { e } = await engine({ auth_failures: { count: 2, window: '10m' } });
    learned(e, 'u');
    e.recordFailure(IP_GB, T0 + 4 * MIN);
    expect(assess(e, 'u', { at: T0 + 5 * MIN }).signals).toEqual([]);
    e.recordFailure(IP_GB, T0 + 4 * MIN);
    expect(assess(e, 'u', { at: T0 + 5 * MIN }).signals).toEqual([{ name: 'auth_failures', weight: 0.14, detail: { count: 2 } }]);
    expect(assess(e, 'u', { ip: '10.9.9.9', at: T0 + 5 * MIN }).signals.map((s) => s.name)).toEqual(['new_ip']);
    expect(assess(e, 'u', { at: T0 + 15 * MIN }).signals).toEqual([]); // the window is over
  });

  it("outside the subject's usual hours: 03:00 after weeks at 10:00; 11:00 is a neighbour of the usual hour", async () => {
    const { e } = await engine();
    for (let d = 0; d < 20; d++) admit(e, 'u', { at: T0 + d * 24 * HOUR });
    const night = assess(e, 'u', { at: T0 + 20 * 24 * HOUR - 7 * HOUR });
    expect(night.signals).toEqual([{ name: 'unusual_hours', weight: 0.16, detail: { hour_utc: 3 } }]);
    expect(assess(e, 'u', { at: T0 + 20 * 24 * HOUR + HOUR }).signals).toEqual([]);
  });

  it("request volume above volume_factor × the subject's usual rate per minute", async () => {
    const { e } = await engine({ volume_min: 5 });
    // Usual: 2 requests a minute for 10 minutes.
    for (let m = 0; m < 10; m++) for (let i = 0; i < 2; i++) admit(e, 'u', { at: T0 + m * MIN + i * 1000 });
    const burst = T0 + 10 * MIN;
    let r: RiskResult | undefined;
    let n = 0;
    for (; n < 30; n++) {
      r = assess(e, 'u', { at: burst + n * 100 });
      if (r.signals.length > 0) break;
      e.learn(r);
    }
    // 5× a usual 2/minute: the 11th request of the minute is the first above it.
    expect(n + 1).toBe(11);
    expect(r?.signals).toEqual([{ name: 'high_volume', weight: 0.17, detail: { per_minute: 11, usual: 2 } }]);
  });

  it('the score is the sum of the weights of the signals that fired, capped at 1', async () => {
    const { e } = await engine({ weights: { new_ip: 0.4, new_country: 0.4, impossible_travel: 0.5, unknown_device: 0.4 } });
    learned(e, 'u');
    const r = assess(e, 'u', { ip: IP_JP, ua: 'curl/8', at: T0 + 5 * MIN });
    expect(names(r)).toEqual(['impossible_travel', 'new_country', 'new_ip', 'unknown_device']);
    expect(r.score).toBe(1);
  });

  it('a weight of 0 turns a signal off', async () => {
    const { e } = await engine({ weights: { new_ip: 0 } });
    learned(e, 'u', '10.0.0.1');
    expect(assess(e, 'u', { ip: '10.0.0.2', at: T0 + 5 * MIN }).signals).toEqual([]);
  });
});

describe('risk profiles', () => {
  it('learning period: novelty signals stay off until enough requests and time; travel and failures do not wait', async () => {
    const { e } = await engine({ learning: { requests: 2, period: '1h' } });
    admit(e, 'u', { ip: '10.0.0.1', at: T0 });
    admit(e, 'u', { ip: '10.0.0.1', at: T0 + MIN });
    expect(assess(e, 'u', { ip: '10.0.0.2', ua: 'x', at: T0 + 2 * MIN }).signals).toEqual([]); // younger than 1h
    expect(names(assess(e, 'u', { ip: '10.0.0.2', ua: 'x', at: T0 + HOUR + MIN }))).toEqual(['new_ip', 'unknown_device']);
    const fresh = (await engine({ learning: { requests: 100, period: '0s' } })).e;
    admit(fresh, 'v', { ip: IP_GB, at: T0 });
    expect(names(assess(fresh, 'v', { ip: IP_JP, ua: 'x', at: T0 + MIN }))).toEqual(['impossible_travel']);
  });

  it('only admitted requests teach the profile: a refused request from a new address stays new', async () => {
    const { e } = await engine();
    learned(e, 'u');
    for (let i = 0; i < 5; i++) expect(names(assess(e, 'u', { ip: IP_DE, at: T0 + 5 * MIN + i }))).toContain('new_ip');
    const ok = assess(e, 'u', { ip: IP_DE, at: T0 + 6 * MIN });
    e.learn(ok);
    expect(names(assess(e, 'u', { ip: IP_DE, at: T0 + 7 * MIN }))).toEqual([]);
  });

  it('decay: an address unseen for longer than decay is new again', async () => {
    const { e } = await engine({ decay: '7d' });
    learned(e, 'u', '10.0.0.1');
    for (let d = 1; d <= 8; d++) admit(e, 'u', { ip: '10.0.0.2', at: T0 + d * 24 * HOUR });
    expect(names(assess(e, 'u', { ip: '10.0.0.1', at: T0 + 8 * 24 * HOUR + MIN }))).toEqual(['new_ip']);
    expect(names(assess(e, 'u', { ip: '10.0.0.2', at: T0 + 8 * 24 * HOUR + MIN }))).toEqual([]);
  });

  it('bounded per subject (max_entries) and in number of subjects (max_subjects, least recently seen dropped)', async () => {
    const { e, store } = await engine({ max_entries: 4, max_subjects: 3 });
    for (let i = 0; i < 50; i++) admit(e, 'u', { ip: `10.0.0.${i}`, ua: `ua-${i}`, at: T0 + i * 1000 });
    const p = store.get('corp:u');
    expect(p?.ips.map(([ip]) => ip)).toEqual(['10.0.0.46', '10.0.0.47', '10.0.0.48', '10.0.0.49']);
    expect(p?.devices.length).toBe(4);
    expect(p?.hours.length).toBe(24);
    for (const s of ['a', 'b', 'c']) admit(e, s, { at: T0 });
    expect(store.size).toBe(3);
    expect(store.get('corp:u')).toBeUndefined();
    expect(store.get('corp:c')?.seen).toBe(1);
  });
});

describe('GeoIP database', () => {
  it('reads the shipped GeoLite2 city databases: country and coordinates, IPv4 and IPv6', () => {
    const geo = loadGeo([GEOIP_V4, GEOIP_V6]);
    expect(geo.locate(IP_GB)).toMatchObject({ country: 'GB' });
    expect(geo.locate(IP_JP)?.country).toBe('JP');
    expect(geo.locate('2001:4860:4860::8888')?.country).toBe('US');
    expect(geo.locate(IP_UNKNOWN)).toBeUndefined();
    expect(isUnlocatable('127.0.0.1') && isUnlocatable('::1') && isUnlocatable('not-an-ip')).toBe(true);
    expect(geo.locate('garbage')).toBeUndefined();
  });

  it('a corrupt, truncated or missing database is a config error at load, naming risk.geoip_db', async () => {
    const dir = tempDir('ztgw-geo-');
    const { readFileSync } = await import('node:fs');
    const real = readFileSync(GEOIP_V4);
    const cases = {
      garbage: Buffer.from('this is not a maxmind database at all'.repeat(100)),
      truncated: real.subarray(0, real.length >> 1),
      empty: Buffer.alloc(0),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      writeFileSync(join(dir, `${name}.mmdb`), bytes);
      const config = configSchema.parse({ listen: { address: '127.0.0.1:0', plaintext: true }, risk: { geoip_db: `${name}.mmdb` } });
      let err: unknown;
      try {
        await compileRisk(config, dir, null);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).path).toEqual(['risk', 'geoip_db']);
    }
    const missing = configSchema.parse({ listen: { address: '127.0.0.1:0', plaintext: true }, risk: { geoip_db: 'nope.mmdb' } });
    await expect(compileRisk(missing, dir, null)).rejects.toThrow(/ENOENT/);
  });
});
