// Paths the gateway answers itself on every host: never routed, never forwarded.
export const RESERVED_PREFIXES = ['/.zt/', '/.well-known/zt-gateway/'] as const;

export function isReserved(matchPath: string): boolean {
  return (
    matchPath === '/.zt' ||
    matchPath.startsWith('/.zt/') ||
    matchPath === '/.well-known/zt-gateway' ||
    matchPath.startsWith('/.well-known/zt-gateway/')
  );
}
