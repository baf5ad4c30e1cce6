// Paths the gateway answers itself on every host of the main listener: never routed, never forwarded.
// (/.zt/csp-report/<token> is served by csp-endpoint.ts, dispatched in handler.ts before the pre-auth limit.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RuntimeState } from './state.ts';
import { GatewayError, type GatewayErrorCode } from '../core/index.ts';
import { isGrantsPath, serveGrants } from './grants-endpoint.ts';
import type { PipelineContext } from './route.ts';

export const JWKS_PATH = '/.well-known/zt-gateway/jwks.json';
/** Starts a login on purpose (authn/oidc endpoints.ts); only on a host some route names. */
export const LOGIN_PATH = '/.zt/login';
/** login.host: an app host takes the auth host's one-time login code here (authn/oidc handoff.ts). */
export const HANDOFF_PATH = '/.zt/handoff';

/** Where a forward-auth proxy's error page sends a refusal (`?code=<X-ZT-Error>`), e.g. nginx's error_page 403. */
export const DENIED_PATH = '/.zt/denied';

/**
 * The refusals /.zt/denied answers with their own status and code (what /.zt/verify puts in X-ZT-Error for
 * an auth_request proxy): a closed set of 4xx codes; anything else, or nothing, is a plain 403. It only
 * renders an answer, so nobody can make the gateway report a 5xx through it.
 */
const DENIED_CODES: ReadonlySet<string> = new Set<GatewayErrorCode>([
  'GW_ERR_BAD_REQUEST',
  'GW_ERR_BAD_PATH',
  'GW_ERR_BAD_QUERY',
  'GW_ERR_BAD_HOST',
  'GW_ERR_AMBIGUOUS_REQUEST',
  'GW_ERR_BAD_METHOD',
  'GW_ERR_BAD_IDENTITY_VALUE',
  'GW_ERR_FORBIDDEN',
  'GW_ERR_SUSPENDED',
  'GW_ERR_CROSS_SITE',
  'GW_ERR_NO_ROUTE',
  'GW_ERR_VALIDATION',
  'GW_ERR_RATE_LIMITED',
]);

/** The refusal /.zt/denied answers for its query (`?code=GW_ERR_…`). */
export function deniedError(query: string): GatewayError {
  const code = new URLSearchParams(query.slice(1)).get('code') ?? '';
  if (!DENIED_CODES.has(code)) return new GatewayError('GW_ERR_FORBIDDEN');
  return new GatewayError(code as GatewayErrorCode, 'the request was refused by the gateway in front of this site');
}

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
  if (ctx.target.path === DENIED_PATH) throw deniedError(ctx.target.query);
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
