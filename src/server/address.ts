/** Splits `host:port` / `[::1]:port` into listen() arguments. */
export function splitAddress(address: string): { host: string; port: number } {
  const idx = address.lastIndexOf(':');
  let host = address.slice(0, idx);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '*') host = '0.0.0.0';
  return { host, port: Number(address.slice(idx + 1)) };
}
