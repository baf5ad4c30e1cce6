// Paths the gateway answers itself on every host of the main listener: never routed, never forwarded.
// (/.zt/csp-report/<token> is served by csp-endpoint.ts, dispatched in handler.ts before the pre-auth limit.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RuntimeState } from './state.ts';
import { GatewayError } from '../core/index.ts';
import { isGrantsPath, serveGrants } from './grants-endpoint.ts';
import type { PipelineContext } from './route.ts';

export const JWKS_PATH = '/.well-known/zt-gateway/jwks.json';
/** Starts a login on purpose (authn/oidc endpoints.ts); only on a host some route names. */
export const LOGIN_PATH = '/.zt/login';

export function isReserved(matchPath: string): boolean {
  return (
    matchPath === '/.zt' ||
    matchPath.startsWith('/.zt/') ||
    matchPath === '/.well-known/zt-gateway' ||
    matchPath.startsWith('/.well-known/zt-gateway/')
  );
}

/** Serves a reserved path, or throws GW_ERR_NO_ROUTE for one that does not exist (yet). */
export function serveReserved(state: RuntimeState, ctx: PipelineContext, req: IncomingMessage, res: ServerResponse): void | Promise<void> {
  if (isGrantsPath(ctx.target.path)) return serveGrants(state, ctx, req, res);
  if (ctx.target.path === JWKS_PATH && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
    const signer = state.compiled.assertion;
    if (signer === null) throw new GatewayError('GW_ERR_NO_ROUTE');
    const body = JSON.stringify(signer.jwks);
    res.writeHead(200, [
      'content-type', 'application/jwk-set+json',
      'content-length', String(Buffer.byteLength(body)),
      'cache-control', 'public, max-age=300',
      'x-content-type-options', 'nosniff',
      'x-request-id', ctx.id,
    ]);
    res.end(ctx.method === 'HEAD' ? undefined : body);
    return;
  }
  throw new GatewayError('GW_ERR_NO_ROUTE');
}
