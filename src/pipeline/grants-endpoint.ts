// /.zt/grants on the main listener: a user requests a just-in-time grant, and an approver (a member of one
// of the grant's approver groups, never the requester) approves it with their own verified identity.
// Scripts send JSON; people send urlencoded forms from the gateway's own pages (answered with a 303 back to
// GET /.zt/grants, or a page). A request the session cookie authenticated must come from the gateway's own
// origin (the cross-site rule of every cookie route), so a cross-site form post is refused (403).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Identity, GatewayError, headerOf, readRequestBody, type Redirect } from '../core/index.ts';
import { readJsonBody } from '../validate/index.ts';
import { checkCrossSite, NO_EXCEPTIONS, type RouteAuthentication } from '../authn/index.ts';
import type { RuntimeState } from './state.ts';
import { assessAccess, approveGrant, denyGrant, GRANT_ID, grantAudit, grantState, grantView, requestGrant } from '../state/index.ts';
import { countAuthFailure, isNavigation } from './chain.ts';
import { GRANT_DECISION, GRANTS_PATH } from './grants-paths.ts';
import { grantsPageContent } from './grants-page.ts';
import type { PipelineContext } from './route.ts';

export { GRANTS_PATH, isGrantsPath } from './grants-paths.ts';

/** `auth`: the grant's providers (a request or decision), or every grant's (the list). */
async function authenticate(state: RuntimeState, auth: RouteAuthentication | null, ctx: PipelineContext): Promise<Identity> {
  if (auth === null) throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'no identity provider can authenticate this grant');
  // The same brute-force lockout as every authenticated route: locked out here too, failures counted here too.
  await state.limits.checkLockout(ctx);
  let identity: Identity;
  try {
    identity = await auth({ authorization: ctx.authorization, rawHeaders: ctx.rawHeaders, socket: ctx.connection, ctx });
  } catch (err) {
    countAuthFailure(state, ctx, err);
    throw err;
  }
  ctx.identity = identity;
  // Forms are allowed (the gateway's own pages send them): the cookie rule is what refuses other sites' pages.
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

/** A person's form was handled: back to the list (303: the browser follows with a GET). */
function seeList(state: RuntimeState, ctx: PipelineContext, res: ServerResponse): void {
  const headers = ['location', GRANTS_PATH, 'cache-control', 'no-store', 'content-length', '0', ...state.compiled.security.flat, 'x-request-id', ctx.id];
  for (const c of state.compiled.rp?.pendingCookies(ctx) ?? []) headers.push('set-cookie', c);
  res.writeHead(303, headers);
  res.end();
}

function sendRedirect(state: RuntimeState, ctx: PipelineContext, res: ServerResponse, redirect: Redirect): void {
  const headers = ['location', redirect.location, 'cache-control', 'no-store', 'content-length', '0', ...state.compiled.security.flat, 'x-request-id', ctx.id];
  for (const c of redirect.cookies) headers.push('set-cookie', c);
  res.writeHead(302, headers);
  res.end();
}

const MAX_FORM_BODY = 4096;

/** An urlencoded form as the JSON body it stands for (each field once; a textarea's line breaks as spaces). */
async function readFormBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const tooLarge = () => new GatewayError('GW_ERR_BAD_REQUEST', `the body may be at most ${MAX_FORM_BODY} bytes`, { headers: [['connection', 'close']] });
  const bytes = await readRequestBody(req, MAX_FORM_BODY, tooLarge);
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(bytes.toString('utf8'))) {
    if (Object.hasOwn(out, k)) throw new GatewayError('GW_ERR_BAD_REQUEST', `the form names "${k}" twice`);
    out[k] = k === 'justification' ? v.replace(/\r\n|\r|\n/g, ' ').trim() : v;
  }
  return out;
}

/** GET /.zt/grants: the caller's own requests and, for approvers, the pending requests they may decide. */
async function list(state: RuntimeState, ctx: PipelineContext, res: ServerResponse): Promise<void> {
  const auth = state.compiled.grantsAuthenticate;
  const page = isNavigation(ctx);
  let identity: Identity;
  try {
    if (auth === null) throw new GatewayError('GW_ERR_NO_ROUTE');
    identity = await authenticate(state, auth, ctx);
  } catch (err) {
    // A person who is not signed in signs in, then comes back here.
    const rp = state.compiled.rp;
    const provider = state.compiled.grantsLoginProvider;
    const missing = err instanceof GatewayError && err.code === 'GW_ERR_UNAUTHENTICATED' && !err.headers.some(([, v]) => v.includes('error='));
    // Only on a host some route names, as /.zt/login (a login's redirect URI is built from the Host).
    if (page && missing && rp !== null && provider !== undefined && state.compiled.namesHost(ctx.host.name)) return sendRedirect(state, ctx, res, await rp.startLogin(ctx, provider, { reason: 'login' }));
    throw err;
  }
  const access = state.access;
  const now = access.now();
  const grants = state.compiled.grants;
  const approverOf = (name: string) => identity.groups.some((g) => grants.get(name)?.approvers.has(g) === true);
  const approver = [...grants.keys()].some(approverOf);
  const mine: Record<string, unknown>[] = [];
  const pending: Record<string, unknown>[] = [];
  const all = [...access.list('grants').values()].sort((a, b) => b.requestedAt - a.requestedAt);
  for (const g of all) {
    const self = g.subject === identity.subject && g.provider === identity.provider;
    if (self) mine.push(grantView(g, now));
    else if (approver && approverOf(g.grant) && g.subject !== identity.subject && grantState(g, now) === 'pending') pending.push(grantView(g, now));
  }
  if (!page) return send(state, ctx, res, 200, { subject: identity.subject, requests: mine, approvals: approver ? pending : [] });
  const { body, csp } = state.compiled.errorPages.page('Access requests', ctx.id, grantsPageContent(identity.subject, mine, pending, approver));
  const headers = ['content-type', 'text/html; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'cache-control', 'no-store'];
  for (let i = 0; i < state.compiled.security.flat.length; i += 2) {
    const n = state.compiled.security.flat[i] as string;
    if (n !== 'content-security-policy' && n !== 'content-security-policy-report-only') headers.push(n, state.compiled.security.flat[i + 1] as string);
  }
  headers.push('content-security-policy', csp, 'x-request-id', ctx.id);
  for (const c of state.compiled.rp?.pendingCookies(ctx) ?? []) headers.push('set-cookie', c);
  res.writeHead(200, headers);
  res.end(ctx.method === 'HEAD' ? undefined : body);
}

export async function serveGrants(state: RuntimeState, ctx: PipelineContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = ctx.target.path;
  if (path === GRANTS_PATH && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
    await state.limits.preAuth(ctx);
    return list(state, ctx, res);
  }
  const decision = GRANT_DECISION.exec(path);
  if (ctx.method !== 'POST' || (path !== GRANTS_PATH && !decision)) throw new GatewayError('GW_ERR_NO_ROUTE');
  const type = (headerOf(ctx, 'content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase();
  // A form is a person's (a browser navigation); it passes the same cross-site rule as JSON (authenticate).
  const form = type === 'application/x-www-form-urlencoded';
  if (type !== 'application/json' && !form) throw new GatewayError('GW_ERR_BAD_REQUEST', 'send a JSON body (content-type: application/json) or an urlencoded form');
  await state.limits.preAuth(ctx);
  const body = form ? await readFormBody(req) : await readJsonBody(req);
  const access = state.access;
  const grants = state.compiled.grants;
  const audit = (event: string, g: Parameters<typeof grantAudit>[1], status: number, code: string | undefined, approver?: string, extra: Record<string, unknown> = {}) =>
    state.audit.record(ctx, status, code, { decision: 'grant', ...grantAudit(event, g, undefined, approver), ...extra });

  if (!decision) {
    const name = typeof body?.grant === 'string' ? body.grant : '';
    const cfg = grants.get(name);
    if (!cfg) throw new GatewayError('GW_ERR_BAD_REQUEST', name ? `unknown grant "${name}"` : '"grant" names the grant to request');
    const identity = await authenticate(state, cfg.authenticate, ctx);
    const g = await requestGrant(access, grants, identity, body);
    audit('grant.request', g, 201, undefined, undefined, { justification: g.justification });
    return form ? seeList(state, ctx, res) : send(state, ctx, res, 201, grantView(g, access.now()));
  }

  const id = decision[1] as string;
  const deny = decision[2] === 'deny';
  const event = deny ? 'grant.deny' : 'grant.approve';
  if (!GRANT_ID.test(id)) throw new GatewayError('GW_ERR_BAD_REQUEST', 'a grant id looks like g_ and 22 base64url characters');
  const pending = access.get('grants', id);
  const cfg = pending ? grants.get(pending.grant) : undefined;
  if (!pending || !cfg) throw new GatewayError('GW_ERR_NO_ROUTE', 'no such grant request');
  const approver = await authenticate(state, cfg.authenticate, ctx);
  try {
    const who = { subject: approver.subject, groups: approver.groups };
    const g = deny ? await denyGrant(access, grants, id, who) : await approveGrant(access, grants, id, who);
    audit(event, g, 200, undefined, approver.subject);
    return form ? seeList(state, ctx, res) : send(state, ctx, res, 200, grantView(g, access.now()));
  } catch (err) {
    if (err instanceof GatewayError) audit(event, pending, err.status, err.code, approver.subject);
    throw err;
  }
}
