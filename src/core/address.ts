import type { Server } from 'node:net';

/** Splits `host:port` / `[::1]:port` into listen() arguments. */
export function splitAddress(address: string): { host: string; port: number } {
  const idx = address.lastIndexOf(':');
  let host = address.slice(0, idx);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '*') host = '0.0.0.0';
  return { host, port: Number(address.slice(idx + 1)) };
}

/** listen() on `host:port` as a promise (rejects on EADDRINUSE and the like). */
export function listenOn(server: Server, address: string): Promise<void> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
