// IP → location from MaxMind-format .mmdb files (maxmind), read once at load; never a network lookup.
// Loopback, private, link-local, CGNAT and documentation addresses have no location (never "travel").
// Imported by compileRisk only when a config names a database (maxmind is not loaded otherwise).
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { Reader, type Response } from 'maxmind';
import { plainAddress } from '../normalize/index.ts';

export interface Location {
  readonly country: string | undefined;
  readonly lat: number;
  readonly lon: number;
}

export interface GeoLookup {
  /** undefined: no location (private address, not in the database, or a lookup error). */
  locate(ip: string): Location | undefined;
}

const NO_LOCATION = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 3],
] as const) NO_LOCATION.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['::', 127], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['2001:db8::', 32], ['64:ff9b::', 96]] as const) {
  NO_LOCATION.addSubnet(net, bits, 'ipv6');
}

/** Loopback, private and other non-routable addresses: no location, whatever a database says. */
export function isUnlocatable(ip: string): boolean {
  const family = isIP(ip);
  return family === 0 || NO_LOCATION.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

interface Entry {
  // ip-location-db shape
  country_code?: unknown;
  latitude?: unknown;
  longitude?: unknown;
  // MaxMind GeoIP2/GeoLite2 shape
  country?: { iso_code?: unknown };
  location?: { latitude?: unknown; longitude?: unknown };
}

function toLocation(e: Entry | null): Location | undefined {
  if (e === null || typeof e !== 'object') return undefined;
  const lat = e.location?.latitude ?? e.latitude;
  const lon = e.location?.longitude ?? e.longitude;
  if (typeof lat !== 'number' || typeof lon !== 'number' || !Number.isFinite(lat) || !Number.isFinite(lon)) return undefined;
  const cc = e.country?.iso_code ?? e.country_code;
  return { country: typeof cc === 'string' && cc !== '' ? cc : undefined, lat, lon };
}

/** Throws (a config error for the caller) when a file cannot be read or is not a usable .mmdb. */
export function loadGeo(files: readonly string[]): GeoLookup {
  const v4: Array<Reader<Response>> = [];
  const v6: Array<Reader<Response>> = [];
  for (const file of files) {
    let reader: Reader<Response>;
    try {
      reader = new Reader<Response>(readFileSync(file));
      // A probe lookup walks the search tree and decodes a record: a truncated or corrupt file fails here.
      reader.get(reader.metadata.ipVersion === 6 ? '2001:4860:4860::8888' : '8.8.8.8');
      reader.get('1.0.0.1');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(code ? `cannot read ${file} (${code})` : `${file} is not a valid MaxMind database (${(err as Error).message})`);
    }
    (reader.metadata.ipVersion === 6 ? v6 : v4).push(reader);
  }
  // An IPv6 database also answers IPv4 (mapped); prefer a dedicated IPv4 one.
  const forV4 = [...v4, ...v6];
  // Recent answers (also "no location"): a client sends many requests from one address.
  const cache = new Map<string, Location | null>();
  return {
    locate(raw) {
      const hit = cache.get(raw);
      if (hit !== undefined) return hit ?? undefined;
      const loc = lookup(raw);
      if (cache.size >= 10_000) cache.delete(cache.keys().next().value as string);
      cache.set(raw, loc ?? null);
      return loc;
    },
  };

  function lookup(raw: string): Location | undefined {
    const ip = plainAddress(raw);
    if (isUnlocatable(ip)) return undefined;
    const readers = isIP(ip) === 4 ? forV4 : v6;
    for (const r of readers) {
      try {
        const loc = toLocation(r.get(ip) as Entry | null);
        if (loc) return loc;
      } catch {
        // A damaged record: this signal is simply absent for the request.
      }
    }
    return undefined;
  }
}
