// Forward-auth (GET /.zt/verify): nginx auth_request, Traefik ForwardAuth and Envoy-style external checks.
// A trusted proxy asks about a request it holds; the same route → limit → authenticate → authorize → mutate
// chain runs on it, and the identity headers the upstream would have received are the answer's headers.
import type { ServerResponse } from 'node:http';
import { GatewayError, type Redirect } from '../core/index.ts';
import { forwardedContext } from '../normalize/index.ts';
import type { RuntimeState } from './state.ts';
import { resolveRoute } from './chain.ts';
import { admit } from './admit.ts';
import { isReserved } from './reserved.ts';
import type { PipelineContext } from './route.ts';
import { NO_CLIENT_TLS } from './ext-authz.ts';

export const VERIFY_PATH = '/.zt/verify';

/** The context of the checked request; 403 for a caller outside trusted_proxies, 400 for a refused target. */
export function verifyContext(state: RuntimeState, outer: PipelineContext): PipelineContext {
  if (!outer.viaTrustedProxy) throw new GatewayError('GW_ERR_FORBIDDEN', 'forward-auth answers only trusted proxies');
  if (outer.method !== 'GET' && outer.method !== 'HEAD') throw new GatewayError('GW_ERR_BAD_METHOD', 'forward-auth checks are GET requests');
  return { ...forwardedContext(outer, outer.rawHeaders, state.compiled.config.listen.limits.max_target_bytes), connection: NO_CLIENT_TLS };
}

/**
 * nginx auth_request relays only 2xx, 401 and 403 (any other answer becomes nginx's own 500). For a proxy
 * that does not relay the answer (no `?login=redirect`), every other 4xx refusal of the checked request (a
 * target the normalizer refuses, no route, a rate limit) is answered 403 with its code in `<prefix>Error`
 * (`X-ZT-Error` by default, like `X-ZT-Login`), for
 * the proxy's `error_page 403` to show through /.zt/denied; the code (and the audit record) stays the real one.
 * A 401 keeps its login hint; a 5xx stays a 5xx.
 */
export function forAuthRequest(err: unknown, prefix = 'X-ZT-'): unknown {
  if (!(err instanceof GatewayError) || err.status === 401 || err.status >= 500) return err;
  return new GatewayError(err.code, err.detail, {
    status: 403,
    headers: [...err.headers, [`${prefix}Error`, err.code]],
    ...(err.errors ? { errors: err.errors } : {}),
    ...(err.extra ? { extra: err.extra } : {}),
    ...(err.cause !== undefined ? { cause: err.cause } : {}),
  });
}

/** `?login=redirect`: the proxy relays a 302 to the client (Traefik); otherwise 401 with a login hint (nginx). */
export function wantsRedirect(outer: PipelineContext): boolean {
  return new URLSearchParams(outer.target.query.slice(1)).get('login') === 'redirect';
}

/**
 * Without redirects, a browser that must log in gets 401 and `<prefix>Login: /.zt/login?…` for the proxy's
 * error page to send it to. A step-up cannot be expressed that way (the IdP request needs cookies the proxy
 * would not relay): it stays a 401 that names what is missing.
 */
function loginHint(state: RuntimeState, ctx: PipelineContext, redirect: Redirect): GatewayError {
  if (redirect.reason === 'step_up') {
    return new GatewayError('GW_ERR_UNAUTHENTICATED', 'this route needs a stronger or more recent login', {
      headers: [['www-authenticate', 'Bearer realm="zt-gateway", error="insufficient_user_authentication"']],
    });
  }
  const provider = ctx.route?.loginProviders[0] ?? '';
  const login = `/.zt/login?provider=${encodeURIComponent(provider)}&return_to=${encodeURIComponent(ctx.target.path + ctx.target.query)}`;
  return new GatewayError('GW_ERR_UNAUTHENTICATED', 'login required', {
    headers: [
      ['www-authenticate', 'Bearer realm="zt-gateway"'],
      [`${state.compiled.config.identity_headers.prefix}Login`, login],
    ],
  });
}

/**
 * Answers 200 with the identity headers; resolves to the Redirect for the handler to answer when the proxy
 * relays redirects (a login hint 401 otherwise); a refusal rejects with its GatewayError.
 */
export async function serveVerify(state: RuntimeState, ctx: PipelineContext, res: ServerResponse, redirects: boolean): Promise<Redirect | undefined> {
  // The gateway's own paths are proxied to it directly, never checked on an app's behalf.
  if (isReserved(ctx.target.matchPath)) throw new GatewayError('GW_ERR_NO_ROUTE');
  const route = resolveRoute(state, ctx);
  const redirect = await admit(state, route, ctx);
  if (redirect !== undefined) {
    if (!redirects) throw loginHint(state, ctx, redirect);
    return redirect;
  }
  const headers = ctx.upstreamHeaders;
  headers.push('cache-control', 'no-store', 'content-length', '0', 'x-request-id', ctx.id);
  for (const c of state.compiled.rp?.pendingCookies(ctx) ?? []) headers.push('set-cookie', c);
  res.writeHead(200, headers);
  res.end();
  return undefined;
}
