// /.zt/grants on the main listener: a user requests a just-in-time grant, and an approver (a member of one
// of the grant's approver groups, never the requester) approves it with their own verified identity.
// JSON bodies only: a cross-site form cannot send application/json; and a request the session cookie
// authenticated must come from the gateway's own origin (the cross-site rule of every cookie route).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Identity, GatewayError, headerOf } from '../core/index.ts';
import { readJsonBody } from '../validate/index.ts';
import { checkCrossSite, NO_EXCEPTIONS } from '../authn/index.ts';
import type { RuntimeState } from './state.ts';
import { assessAccess, type CompiledGrant, approveGrant, GRANT_ID, grantAudit, grantView, requestGrant } from '../state/index.ts';
import { countAuthFailure } from './chain.ts';
import type { PipelineContext } from './route.ts';

export const GRANTS_PATH = '/.zt/grants';
const APPROVE = /^\/\.zt\/grants\/([^/]+)\/approve$/;

export function isGrantsPath(path: string): boolean {
  return path === GRANTS_PATH || path.startsWith(`${GRANTS_PATH}/`);
}

async function authenticate(state: RuntimeState, grant: CompiledGrant, ctx: PipelineContext, req: IncomingMessage): Promise<Identity> {
  if (grant.authenticate === null) throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'no identity provider can authenticate this grant');
  // The same brute-force lockout as every authenticated route: locked out here too, failures counted here too.
  await state.limits.checkLockout(ctx);
  let identity: Identity;
  try {
    identity = await grant.authenticate({ authorization: ctx.authorization, rawHeaders: ctx.rawHeaders, socket: ctx.connection, ctx });
  } catch (err) {
    countAuthFailure(state, ctx, err);
    throw err;
  }
  ctx.identity = identity;
  // JSON-only is the first defence; the cookie rule is the second (a same-site page can send JSON with fetch).
  if (identity.method === 'session') checkCrossSite(NO_EXCEPTIONS, ctx, () => state.compiled.publicOrigins.originOf(ctx));
  // A suspended subject or revoked token cannot request or approve either (and the state must be current).
  assessAccess(state.access, { onStateError: 'deny' }, identity, () => undefined);
  return identity;
}

function send(state: RuntimeState, ctx: PipelineContext, res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  const headers = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(text)), 'cache-control', 'no-store', ...state.compiled.security.flat, 'x-request-id', ctx.id];
  for (const c of state.compiled.rp?.pendingCookies(ctx) ?? []) headers.push('set-cookie', c);
  res.writeHead(status, headers);
  res.end(text);
}

export async function serveGrants(state: RuntimeState, ctx: PipelineContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = ctx.target.path;
  const approve = APPROVE.exec(path);
  if (ctx.method !== 'POST' || (path !== GRANTS_PATH && !approve)) throw new GatewayError('GW_ERR_NO_ROUTE');
  const type = (headerOf(ctx, 'content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new GatewayError('GW_ERR_BAD_REQUEST', 'send a JSON body (content-type: application/json)');
  await state.limits.preAuth(ctx);
  const body = await readJsonBody(req);
  const access = state.access;
  const grants = state.compiled.grants;
  const audit = (event: string, g: Parameters<typeof grantAudit>[1], status: number, code: string | undefined, approver?: string, extra: Record<string, unknown> = {}) =>
    state.audit.record(ctx, status, code, { decision: 'grant', ...grantAudit(event, g, undefined, approver), ...extra });

  if (!approve) {
    const name = typeof body?.grant === 'string' ? body.grant : '';
    const cfg = grants.get(name);
    if (!cfg) throw new GatewayError('GW_ERR_BAD_REQUEST', name ? `unknown grant "${name}"` : '"grant" names the grant to request');
    const identity = await authenticate(state, cfg, ctx, req);
    const g = await requestGrant(access, grants, identity, body);
    audit('grant.request', g, 201, undefined, undefined, { justification: g.justification });
    return send(state, ctx, res, 201, grantView(g, access.now()));
  }

  const id = approve[1] as string;
  if (!GRANT_ID.test(id)) throw new GatewayError('GW_ERR_BAD_REQUEST', 'a grant id looks like g_ and 22 base64url characters');
  const pending = access.get('grants', id);
  const cfg = pending ? grants.get(pending.grant) : undefined;
  if (!pending || !cfg) throw new GatewayError('GW_ERR_NO_ROUTE', 'no such grant request');
  const approver = await authenticate(state, cfg, ctx, req);
  try {
    const g = await approveGrant(access, grants, id, { subject: approver.subject, groups: approver.groups });
    audit('grant.approve', g, 200, undefined, approver.subject);
    return send(state, ctx, res, 200, grantView(g, access.now()));
  } catch (err) {
    if (err instanceof GatewayError) audit('grant.approve', pending, err.status, err.code, approver.subject);
    throw err;
  }
}
