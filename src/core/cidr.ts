// The syntax of an address or CIDR entry (trusted_proxies, source_ip rules): shared by the config schema and
// the address sets that normalize and authz build from it.
import { isIP } from 'node:net';

export interface CidrEntry {
  readonly address: string;
  /** undefined: a single address. */
  readonly prefix: number | undefined;
  readonly type: 'ipv4' | 'ipv6';
}

/** Throws a TypeError naming the entry; `10.0.0.0/8`, `::1`, `fd00::/8`, `127.0.0.1` all work. */
export function parseCidr(entry: string): CidrEntry {
  const [address = '', bits, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) throw new TypeError(`invalid CIDR "${entry}"`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (bits === undefined) return { address, prefix: undefined, type };
  const prefix = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new TypeError(`invalid prefix length in "${entry}"`);
  return { address, prefix, type };
}
