// The stages between normalize and forward, shared by plain requests and WebSocket upgrades:
// route → authenticate → mutate. Each returns synchronously when it can (cache hits), a Promise otherwise.
import type { IncomingMessage } from 'node:http';
import type { Identity } from '../authn/identity.ts';
import { appendIdentityHeaders } from '../proxy/identity-headers.ts';
import type { CompiledRoute } from '../routing/route.ts';
import type { RuntimeState } from '../server/runtime.ts';
import type { RequestContext } from './context.ts';
import { GatewayError } from './errors.ts';

export function resolveRoute(state: RuntimeState, ctx: RequestContext): CompiledRoute {
  const route = state.compiled.router.match(ctx.host.name, ctx.target.matchPath, ctx.method);
  if (route === undefined) throw new GatewayError('GW_ERR_NO_ROUTE');
  ctx.route = route;
  return route;
}

/** null for a public route; otherwise the verified identity, or a thrown/rejected GatewayError. */
export function authenticateRequest(
  route: CompiledRoute,
  ctx: RequestContext,
  req: IncomingMessage,
): Identity | null | Promise<Identity> {
  if (route.public) return null;
  // Default deny: a route that is not public and names no working provider never forwards.
  if (route.authenticate === null) {
    throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'this route requires authentication', {
      headers: [['www-authenticate', 'Bearer realm="zt-gateway"']],
    });
  }
  return route.authenticate({ authorization: ctx.authorization, rawHeaders: req.rawHeaders, socket: req.socket });
}

/** Drops the route's credential headers and adds verified identity (and the signed assertion). */
export function mutateRequest(
  state: RuntimeState,
  route: CompiledRoute,
  ctx: RequestContext,
  identity: Identity | null,
): void | Promise<void> {
  const headers = ctx.upstreamHeaders;
  if (route.dropHeaders.size > 0) {
    let w = 0;
    for (let r = 0; r < headers.length; r += 2) {
      const name = (headers[r] as string).toLowerCase().replaceAll('_', '-');
      if (route.dropHeaders.has(name)) continue;
      headers[w++] = headers[r] as string;
      headers[w++] = headers[r + 1] as string;
    }
    headers.length = w;
  }
  if (identity === null) return;
  appendIdentityHeaders(headers, identity, route.identityHeaders);
  const signer = state.compiled.assertion;
  if (!route.assertion || signer === null) return;
  const token = signer.sign(identity, route.upstream.origin);
  if (typeof token === 'string') {
    headers.push(route.identityHeaders.assertion, token);
    return;
  }
  return token.then((t) => {
    headers.push(route.identityHeaders.assertion, t);
  });
}

/** Runs authenticate then mutate, staying synchronous when both are. */
export function admit(
  state: RuntimeState,
  route: CompiledRoute,
  ctx: RequestContext,
  req: IncomingMessage,
): Identity | null | Promise<Identity | null> {
  const identity = authenticateRequest(route, ctx, req);
  if (identity instanceof Promise) {
    return identity.then(async (id) => {
      await mutateRequest(state, route, ctx, id);
      return id;
    });
  }
  const mutated = mutateRequest(state, route, ctx, identity);
  return mutated instanceof Promise ? mutated.then(() => identity) : identity;
}
