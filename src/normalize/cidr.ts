// Trusted-proxy address sets, built once at load with node:net's BlockList.
import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../core/index.ts';
import { ConfigError } from '../config/index.ts';

export interface AddressSet {
  has(address: string): boolean;
  readonly empty: boolean;
}

/** Strips the IPv4-mapped IPv6 prefix so 10.0.0.1 and ::ffff:10.0.0.1 are one client. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** trusted_proxies as an address set; throws ConfigError with `path` [index] for a bad entry. Frozen. */
export function compileTrustedProxies(cidrs: readonly string[]): AddressSet {
  cidrs.forEach((entry, i) => {
    try {
      parseCidr(entry);
    } catch (err) {
      throw new ConfigError('CFG_BAD_VALUE', [i], (err as Error).message);
    }
  });
  return compileAddressSet(cidrs);
}

/** Throws a TypeError naming the first bad entry; `10.0.0.0/8`, `::1`, `fd00::/8`, `127.0.0.1` all work. */
export function compileAddressSet(cidrs: readonly string[]): AddressSet {
  const list = new BlockList();
  for (const entry of cidrs) {
    const { address, prefix, type } = parseCidr(entry);
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  }
  const empty = cidrs.length === 0;
  return Object.freeze({
    empty,
    has(address: string): boolean {
      if (empty) return false;
      const plain = plainAddress(address);
      const family = isIP(plain);
      return family !== 0 && list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
    },
  });
}

/**
 * The key a per-address limit counts under: the address itself for IPv4 (also when written IPv4-mapped, in
 * any spelling: `::FFFF:1.2.3.4`, `::ffff:102:304`), its /64 network for IPv6 (one subscriber usually holds a
 * whole /64, so counting single addresses would let it rotate past any limit).
 */
export function limitKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = ipv6Groups(address.toLowerCase());
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = groups.slice(6);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail as two groups). */
function ipv6Groups(address: string): number[] {
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = address.split('::');
  const left = parse(head);
  if (tail === undefined) return left;
  const right = parse(tail);
  return [...left, ...Array.from({ length: 8 - left.length - right.length }, () => 0), ...right];
}
