// Envoy ext_authz HTTP mode: `http_service` with `path_prefix: /.zt/ext-authz`. Envoy sends the original
// method, Host and path (after the prefix) with `Content-Length: 0` and the headers it is told to pass; the
// answer is 200 with the identity headers, or the denial Envoy relays to the client (status, headers, body).
import type { ServerResponse } from 'node:http';
import { GatewayError, type Redirect } from '../core/index.ts';
import type { RuntimeState } from './state.ts';
import { checkContext, decideCheck, EXT_AUTHZ_PREFIX, type CheckAnswer } from './ext-authz.ts';
import type { PipelineContext } from './route.ts';

export function isExtAuthzPath(matchPath: string): boolean {
  return matchPath === EXT_AUTHZ_PREFIX || matchPath.startsWith(`${EXT_AUTHZ_PREFIX}/`);
}

/** What the handler does with a decision it also audits: its own redirect and problem writers. */
export interface CheckReplies {
  redirect(redirect: Redirect, id: string): void;
  fail(err: unknown, id: string): void;
}

/**
 * The checked request's context: trusted proxies only (403), the target is the canonical path after the
 * prefix (the whole path was already canonicalized and refused like any other), host and scheme the caller's.
 */
export function extAuthzContext(state: RuntimeState, outer: PipelineContext): PipelineContext {
  if (!outer.viaTrustedProxy) throw new GatewayError('GW_ERR_FORBIDDEN', 'ext_authz answers only trusted proxies');
  const path = outer.target.path;
  // `/.zt/ext-authz;x/…` matches the prefix only once `;params` are cut: not the prefix Envoy sends.
  if (!path.startsWith(`${EXT_AUTHZ_PREFIX}/`)) throw new GatewayError('GW_ERR_BAD_PATH', `ext_authz checks are under ${EXT_AUTHZ_PREFIX}/`);
  return checkContext(state, {
    id: outer.id,
    startNs: outer.startNs,
    method: outer.method,
    scheme: outer.forwardedProto,
    host: outer.host.authority,
    target: path.slice(EXT_AUTHZ_PREFIX.length) + outer.target.query,
    headers: outer.rawHeaders,
    clientIp: outer.clientIp,
    peerIp: outer.peerIp,
    viaTrustedProxy: true,
    traceId: outer.traceId,
  });
}

/** 200 + identity headers; `x-envoy-auth-headers-to-remove` names the spoofable ones it does not set. */
function writeAllowed(res: ServerResponse, answer: Extract<CheckAnswer, { kind: 'allow' }>, id: string): void {
  const headers = [...answer.headers, 'cache-control', 'no-store', 'content-length', '0', 'x-request-id', id];
  if (answer.remove.length > 0) headers.push('x-envoy-auth-headers-to-remove', answer.remove.join(','));
  for (const c of answer.cookies) headers.push('set-cookie', c);
  res.writeHead(200, headers);
  res.end();
}

/**
 * Decides the checked request and answers Envoy; denials and redirects go through the handler's writers.
 * Resolves true when the request was allowed.
 */
export function serveExtAuthz(state: RuntimeState, checked: PipelineContext, res: ServerResponse, replies: CheckReplies): Promise<boolean> {
  return decideCheck(state, checked).then((answer) => {
    if (answer.kind === 'allow') {
      writeAllowed(res, answer, checked.id);
      return true;
    }
    if (answer.kind === 'redirect') replies.redirect(answer.redirect, checked.id);
    else replies.fail(answer.error, checked.id);
    return false;
  });
}
