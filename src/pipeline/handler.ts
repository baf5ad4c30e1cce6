// The stage chain for plain HTTP requests, in the fixed order of DESIGN.md §1:
// normalize → route → limit (pre) → authenticate → authorize → limit (post) → mutate (src/pipeline/chain.ts)
// → validate (routes with `validate`, src/validate) → forward → respond (security headers, CORS) → audit.
// Reserved /.zt/ paths are answered by the gateway.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from '../audit/index.ts';
import { forward, mutateRequestHeaders, type LiveStream, type ResponsePlan, type StreamSink } from '../proxy/index.ts';
import type { RuntimeHandle } from './state.ts';
import type { CompiledRoute, PipelineContext } from './route.ts';
import { abortResponse, enterTrace, sendProblem, GatewayError, headerOf, isGrpcContentType, type Redirect, type Identity } from '../core/index.ts';
import type { ServerTrace } from '../tracing/index.ts';
import { resolveRoute } from './chain.ts';
import { admit } from './admit.ts';
import { HANDOFF_PATH, isReserved, LOGIN_PATH, serveReserved } from './reserved.ts';
import { isCspReportPath, serveCspReport } from './csp-endpoint.ts';
import { createLearnTap } from '../response/index.ts';
import { forAuthRequest, serveVerify, verifyContext, VERIFY_PATH, wantsRedirect } from './verify.ts';
import { extAuthzContext, isExtAuthzPath, serveExtAuthz } from './ext-authz-http.ts';
import { randomUUID } from 'node:crypto';
import { factsFromError } from '../metrics/index.ts';
import { endExchange, type Outcome } from './exchange.ts';
import { sendErrorPage } from './error-page.ts';

const kBytes = Symbol('zt.bytes');
type SocketWithMarks = { [kBytes]?: { read: number; written: number } };

/**
 * Responses still streaming are live connections (runtime.live) from their head to the end of their body:
 * one Set insert and delete and three metric cells per request, no allocation.
 */
function streamSink(runtime: RuntimeHandle): StreamSink<PipelineContext> {
  const { live, metrics } = runtime;
  return {
    opened(stream: LiveStream<PipelineContext>) {
      live.insert(stream);
      metrics.liveOpened(metrics.route(stream.ctx.route?.name ?? 'none'), 'stream');
    },
    closed(stream: LiveStream<PipelineContext>, reason: string) {
      live.delete(stream);
      const name = stream.ctx.route?.name ?? 'none';
      metrics.liveClosed(metrics.route(name), name, 'stream', reason);
    },
  };
}

export function createRequestHandler(runtime: RuntimeHandle, log: Logger) {
  const streams = streamSink(runtime);
  return function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const startNs = process.hrtime.bigint();
    const state = runtime.acquire();
    const socket = req.socket;
    // Counted from the end of the previous request on this connection: by now this request's head (and
    // maybe body) has already been read.
    const marks = (socket as SocketWithMarks)[kBytes] ?? { read: 0, written: 0 };
    const bytesIn = marks.read;
    const bytesOut = marks.written;
    let ctx: PipelineContext | undefined;
    const outcome: Outcome = { code: undefined, subject: undefined, authMethod: undefined };
    let upstreamStartNs: bigint | undefined;
    let trace: ServerTrace | undefined;

    res.once('close', () => {
      (socket as SocketWithMarks)[kBytes] = { read: socket.bytesRead, written: socket.bytesWritten };
      const endNs = process.hrtime.bigint(); // one clock read for the upstream time and the request's (~90 ns each here)
      if (upstreamStartNs !== undefined && outcome.code === undefined && res.writableFinished) {
        outcome.upstreamSeconds = Number(endNs - upstreamStartNs) / 1e9;
      }
      endExchange(runtime, state, log, {
        kind: 'request',
        req,
        ctx,
        status: res.statusCode,
        outcome,
        startNs,
        endNs,
        completed: res.writableFinished,
        bytesIn: socket.bytesRead - bytesIn,
        bytesOut: socket.bytesWritten - bytesOut,
        trace,
      });
    });

    try {
      ctx = state.normalize(req, startNs);
      const tracer = state.compiled.tracer;
      if (tracer !== null) {
        trace = ctx.trace = tracer.startRequest(ctx, req.httpVersion);
        enterTrace(trace); // JWKS, IdP and Redis calls made for this request open their spans under it
      }
      if (isReserved(ctx.target.matchPath)) {
        const c = ctx;
        if (c.target.matchPath === VERIFY_PATH) {
          outcome.forwardAuth = true;
          const relays = wantsRedirect(c); // else an auth_request proxy: refusals as 401/403 (forAuthRequest)
          const refuse = (err: unknown, id: string): void => fail(relays ? err : forAuthRequest(err, state.compiled.config.identity_headers.prefix), id);
          let checked: PipelineContext;
          try {
            checked = ctx = verifyContext(state, c);
          } catch (err) {
            return refuse(err, c.id);
          }
          if (trace !== undefined) checked.trace = trace; // the asked-about request's record names this trace
          serveVerify(state, checked, res, relays).then((redirect) => {
            if (redirect) return answerRedirect(redirect, checked.id);
            outcome.subject = checked.identity?.subject;
            outcome.authMethod = checked.identity?.method;
          }, (err: unknown) => refuse(err, checked.id));
          return;
        }
        if (isExtAuthzPath(c.target.matchPath)) {
          outcome.forwardAuth = true;
          const checked = (ctx = extAuthzContext(state, c));
          serveExtAuthz(state, checked, res, { redirect: answerRedirect, fail }).then((allowed) => {
            if (!allowed) return;
            outcome.subject = checked.identity?.subject;
            outcome.authMethod = checked.identity?.method;
          }, (err: unknown) => fail(err, checked.id));
          return;
        }
        if (isCspReportPath(c.target.path)) {
          // Its own per-address budget: a page's burst of reports must not spend the user's pre-auth budget.
          serveCspReport(state, c, req, res).catch((err: unknown) => fail(err, c.id));
          return;
        }
        // The gateway's own endpoints (login, callback, back-channel logout, grants) reach the IdP or the
        // state store: the per-IP pre-auth limit protects them like any authenticator.
        const serve = (): void => {
          // A Host no route names never starts a login: 404 before anything else.
          if ((c.target.path === LOGIN_PATH || c.target.path === HANDOFF_PATH) && !state.compiled.namesHost(c.host.name) && state.compiled.rp?.authHost !== c.host.name) return fail(new GatewayError('GW_ERR_NO_ROUTE'), c.id);
          const served = state.compiled.rp?.serve(c, req, res, state.compiled.security.flat) ?? false;
          if (served === false) {
            const own = serveReserved(state, c, req, res);
            if (own) own.catch((err: unknown) => fail(err, c.id));
            return;
          }
          served.catch((err: unknown) => fail(err, c.id));
        };
        const limited = state.limits.preAuth(c);
        if (limited) limited.then(serve).catch((err: unknown) => fail(err, c.id));
        else serve();
        return;
      }
      const current = ctx;
      const origin = headerOf(current, 'origin');
      const acrm = current.method === 'OPTIONS' && origin !== undefined ? headerOf(current, 'access-control-request-method') : undefined;
      if (origin !== undefined && acrm !== undefined) {
        // A preflight asks about the method it names: route by that, so `methods: [GET, POST]` routes answer.
        const target = state.compiled.router.match(current.host.name, current.target.matchPath, acrm);
        if (target?.cors) {
          current.route = target;
          const limited = state.limits.preAuth(current);
          if (limited) limited.then(() => answerPreflight(target, current, origin, acrm), (err: unknown) => fail(err, current.id));
          else answerPreflight(target, current, origin, acrm);
          return;
        }
      }
      const route = resolveRoute(state, current);
      const group = state.upstreams.get(route.name);
      if (group === undefined) throw new GatewayError('GW_ERR_INTERNAL');
      const cors = route.cors ? route.cors.actual(origin) : null;
      const send = (identity: Identity | null): void => {
        if (identity !== null) {
          outcome.subject = identity.subject;
          outcome.authMethod = identity.method;
        }
        // gRPC needs HTTP/2 (and its trailers) to the upstream: on an HTTP/1.1 route it is UNAVAILABLE.
        if (!route.upstream.http2 && isGrpcContentType(headerOf(current, 'content-type'))) {
          return fail(new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', 'gRPC needs upstream.http2 on this route'), current.id);
        }
        const cookies = state.compiled.rp?.pendingCookies(current);
        // security_headers.csp.learn: the forwarder shows this route's HTML bodies to the hashing tap.
        const tap = route.cspLearn ? createLearnTap(state.csp, route.name) : undefined;
        const plan: ResponsePlan = { security: route.security, cors, tap, ...(cookies ? { cookies } : {}), edit: route.responseEdit, ownCookie: state.compiled.rp?.isOwnCookie };
        if (route.requestHeaders !== null) mutateRequestHeaders(current.upstreamHeaders, route.requestHeaders);
        const relay = (body?: Buffer | Readable): Promise<void> => {
          upstreamStartNs = process.hrtime.bigint();
          return forward(current, req, res, group, plan, streams, outcome, body);
        };
        // validate (after authorize: no body is held for a caller who may not call), or, on a route whose
        // policy reads query parameters, the form-body check: both hold the body, then forward it intact.
        const held = route.validator?.check(current, req) ?? (route.bodyParams !== null && current.hasBody ? route.bodyParams.check(current, req) : undefined);
        (held === undefined ? relay() : held.then(relay)).catch((err: unknown) => fail(err, current.id));
      };
      // A login or step-up redirect is an outcome of admission, answered instead of the terminal.
      const proceed = (redirect: Redirect | undefined): void => (redirect ? answerRedirect(redirect, current.id) : send(current.identity));
      const admitted = admit(state, route, current);
      if (admitted instanceof Promise) admitted.then(proceed).catch((err: unknown) => fail(err, current.id));
      else proceed(admitted);
    } catch (err) {
      outcome.requestId = ctx?.id ?? randomUUID();
      fail(err, outcome.requestId);
    }

    /** CORS preflight: answered here, before authentication, never forwarded. */
    function answerPreflight(route: CompiledRoute, c: PipelineContext, origin: string, method: string): void {
      const headers = route.cors?.preflight(origin, method, headerOf(c, 'access-control-request-headers'));
      if (!headers) return fail(new GatewayError('GW_ERR_FORBIDDEN', 'CORS preflight refused for this origin, method or headers'), c.id);
      headers.push(...route.security.flat, 'content-length', '0', 'x-request-id', c.id);
      res.writeHead(204, headers);
      res.end();
    }

    /** Login or step-up: audited as unauthenticated, answered with a 302 to the identity provider. */
    function answerRedirect(redirect: Redirect, id: string): void {
      factsFromError(redirect, outcome); // a step-up: read by the audit record and metrics
      outcome.code = 'GW_ERR_UNAUTHENTICATED';
      if (res.headersSent) return void abortResponse(res, 'internal');
      const headers = ['location', redirect.location, 'cache-control', 'no-store', 'content-length', '0', ...(ctx?.route ?? state.compiled).security.flat, 'x-request-id', id];
      for (const c of redirect.cookies) headers.push('set-cookie', c);
      res.writeHead(302, headers);
      res.end();
    }

    function fail(err: unknown, id: string): void {
      factsFromError(err, outcome); // which limit refused it: read by the audit record and metrics
      const security = (ctx?.route ?? state.compiled).security.flat;
      // A browser navigation gets a page for people (same status and headers); anything else problem+json.
      if (outcome.forwardAuth !== true && sendErrorPage(state, ctx, req, res, err, id, security)) outcome.code = err instanceof GatewayError ? err.code : 'GW_ERR_INTERNAL';
      else outcome.code = sendProblem(res, err, id, security);
      if (!(err instanceof GatewayError) || err.status >= 500) {
        const cause = err instanceof GatewayError ? err.cause : err;
        log.warn({ req_id: id, code: outcome.code, err: cause }, 'request failed');
      }
    }
  };
}
