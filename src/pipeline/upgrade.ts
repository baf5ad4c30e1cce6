// WebSocket upgrades: the same normalize → route → admit path as any request (chain.ts), then the WebSocket
// terminal (proxy/websocket.ts). The record of the upgrade is written by exchange.ts, as for every request.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../audit/index.ts';
import { enterTrace, ERROR_CODES, GatewayError, writeProblemToSocket, type GatewayErrorCode, type Redirect } from '../core/index.ts';
import type { ServerTrace } from '../tracing/index.ts';
import { factsFromError } from '../metrics/index.ts';
import { createWebSocketTerminal, mutateRequestHeaders, rewritePath } from '../proxy/index.ts';
import { resolveRoute } from './chain.ts';
import { admit } from './admit.ts';
import { endExchange, type Outcome } from './exchange.ts';
import { LiveWebSocket } from './live-websocket.ts';
import { isReserved } from './reserved.ts';
import type { PipelineContext } from './route.ts';
import type { RuntimeHandle } from './state.ts';

export function createUpgradeHandler(runtime: RuntimeHandle, log: Logger, open: Set<Duplex>) {
  const terminal = createWebSocketTerminal();

  return function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const startNs = process.hrtime.bigint();
    const state = runtime.acquire();
    let ctx: PipelineContext | undefined;
    const outcome: Outcome = { code: undefined };
    let ended = false;
    let live: LiveWebSocket | undefined;
    let trace: ServerTrace | undefined;
    const refuse = (err: unknown, id: string) => {
      factsFromError(err, outcome);
      outcome.code = writeProblemToSocket(socket, err, id);
      if (!(err instanceof GatewayError)) log.warn({ req_id: id, err }, 'upgrade failed');
    };
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      // Relayed past the 101: its records are written by the live connection (live-websocket.ts).
      if (ended || live?.isOpen) return;
      ended = true;
      const status = outcome.code === undefined ? 101 : (ERROR_CODES[outcome.code as GatewayErrorCode]?.status ?? 500);
      endExchange(runtime, state, log, { kind: 'upgrade', req, ctx, status, outcome, startNs, trace });
    });
    socket.on('error', () => socket.destroy());

    try {
      ctx = state.normalize(req, startNs);
      const tracer = state.compiled.tracer;
      if (tracer !== null) {
        trace = ctx.trace = tracer.startRequest(ctx, req.httpVersion);
        enterTrace(trace);
      }
      if (isReserved(ctx.target.matchPath)) throw new GatewayError('GW_ERR_NO_ROUTE');
      const current = ctx;
      const route = resolveRoute(state, current);
      if (!route.websocket) throw new GatewayError('GW_ERR_BAD_REQUEST', 'WebSocket is not enabled on this route');
      // A validated route describes HTTP requests only: an upgrade would reach the app unvalidated.
      if (route.validator !== null) throw new GatewayError('GW_ERR_BAD_REQUEST', 'WebSocket is not available on a validated route');
      const proceed = (redirect: Redirect | undefined): void => {
        // A socket cannot follow a login redirect: it is told to authenticate, as an API call would be.
        if (redirect) return refuse(new GatewayError('GW_ERR_UNAUTHENTICATED', 'login required'), current.id);
        const group = state.upstreams.get(route.name);
        if (group === undefined) throw new GatewayError('GW_ERR_INTERNAL');
        const path = route.upstream.rewrite === null ? current.target.path : (outcome.forwardedPath = rewritePath(route.upstream.rewrite, current.target.path));
        if (path === undefined) throw new GatewayError('GW_ERR_BAD_PATH', 'the path is not under the route prefix as written');
        // The same balancing and health as plain requests; the socket counts as in flight until it closes.
        const endpoint = group.pick();
        endpoint.begin();
        socket.once('close', () => endpoint.end());
        if (route.requestHeaders !== null) mutateRequestHeaders(current.upstreamHeaders, route.requestHeaders);
        const conn = (live = new LiveWebSocket(runtime, state, log, current, outcome, trace));
        const onError = (err: GatewayError, cause: Error): void => {
          if (!conn.isOpen && !socket.destroyed) group.failed(endpoint, false);
          // After the 101 the client's socket carries frames, not an HTTP answer: the relay ends both sides.
          // Or the client left first: the handshake was abandoned, nobody to answer.
          if (conn.isOpen || socket.destroyed) return void log.info({ req_id: current.id, err: cause.message }, 'websocket upstream socket closed');
          refuse(err, current.id);
          log.warn({ req_id: current.id, err: cause }, 'websocket upstream failed');
        };
        terminal(req, socket, head, current, endpoint.target, path, onError, conn, state.compiled.rp?.isOwnCookie);
      };
      const admitted = admit(state, route, current);
      // catch() after then(): an exception inside proceed() must become a problem answer too, not an
      // unhandled rejection (which would end the process).
      if (admitted instanceof Promise) admitted.then(proceed).catch((err: unknown) => refuse(err, current.id));
      else proceed(admitted);
    } catch (err) {
      refuse(err, ctx?.id ?? randomUUID());
    }
  };
}
