// The stage chain for plain HTTP requests, in the fixed order of DESIGN.md §1:
// normalize → route → (limit → authenticate → authorize → mutate: later issues) → forward → respond → audit.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../audit/logger.ts';
import { forward } from '../proxy/forward.ts';
import type { Runtime, RuntimeState } from '../server/runtime.ts';
import { sendProblem } from '../server/problem.ts';
import type { RequestContext } from './context.ts';
import { GatewayError } from './errors.ts';
import { isReserved } from './reserved.ts';
import { randomUUID } from 'node:crypto';

export interface Outcome {
  code: string | undefined;
}

/** Route lookup plus the checks every request passes before anything is sent upstream. */
export function resolveRoute(state: RuntimeState, ctx: RequestContext): NonNullable<RequestContext['route']> {
  if (isReserved(ctx.target.matchPath)) throw new GatewayError('GW_ERR_NO_ROUTE');
  const route = state.compiled.router.match(ctx.host.name, ctx.target.matchPath, ctx.method);
  if (route === undefined) throw new GatewayError('GW_ERR_NO_ROUTE');
  ctx.route = route;
  // Default deny: until a route names working authentication, only `public: true` is forwarded.
  if (!route.public) {
    throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'this route requires authentication', {
      headers: [['www-authenticate', 'Bearer realm="zt-gateway"']],
    });
  }
  return route;
}

export function createRequestHandler(runtime: Runtime, log: Logger) {
  return function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const startNs = process.hrtime.bigint();
    const state = runtime.acquire();
    const socket = req.socket;
    const bytesIn = socket.bytesRead;
    const bytesOut = socket.bytesWritten;
    let ctx: RequestContext | undefined;
    const outcome: Outcome = { code: undefined };

    res.once('close', () => {
      runtime.release(state);
      if (!state.compiled.config.log.access) return;
      log.info({
        msg: 'request',
        req_id: ctx?.id,
        route: ctx?.route?.name,
        method: req.method,
        host: ctx?.host.name,
        path: ctx?.target.path, // never the query: it may carry tokens
        status: res.statusCode,
        code: outcome.code,
        completed: res.writableFinished,
        duration_ms: Number(process.hrtime.bigint() - startNs) / 1e6,
        bytes_in: socket.bytesRead - bytesIn,
        bytes_out: socket.bytesWritten - bytesOut,
        client_ip: ctx?.clientIp ?? socket.remoteAddress,
      });
    });

    try {
      ctx = state.normalize(req, startNs);
      const route = resolveRoute(state, ctx);
      const pool = state.pools.get(route.upstream.poolKey);
      if (pool === undefined) throw new GatewayError('GW_ERR_INTERNAL');
      const current = ctx;
      forward(current, req, res, pool, route.upstream).catch((err: unknown) => fail(err, current.id));
    } catch (err) {
      fail(err, ctx?.id ?? randomUUID());
    }

    function fail(err: unknown, id: string): void {
      outcome.code = sendProblem(res, err, id);
      if (!(err instanceof GatewayError) || err.status >= 500) {
        const cause = err instanceof GatewayError ? err.cause : err;
        log.warn({ req_id: id, code: outcome.code, err: cause }, 'request failed');
      }
    }
  };
}
