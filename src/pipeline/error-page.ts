// Pages for people: a refused browser navigation (the same test that picks a login redirect over a 401,
// chain.ts isNavigation) gets an HTML page instead of problem+json, with the same status and headers
// (Retry-After, WWW-Authenticate, …). Everything else keeps problem+json byte for byte (core/problem.ts).
// The template and its CSP were compiled at load (response/error-page.ts); here only values are filled.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, toProblem } from '../core/index.ts';
import { escapeHtml, type PageValues } from '../response/index.ts';
import { isNavigation } from './chain.ts';
import { GRANTS_PATH, isGrantsPath, isPersonForm } from './grants-paths.ts';
import type { PipelineContext } from './route.ts';
import type { RuntimeState } from './state.ts';

/** Statuses answered after the request head was parsed; parser-level 400 and 431 never get here. */
const PAGE_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504]);

/** Status in words and what to do, for people. */
const WORDS: Readonly<Record<number, readonly [string, string]>> = {
  400: ['Bad request', 'The address or the request was refused as malformed. Check the link you followed, or go back and try again.'],
  401: ['Sign-in required', 'This page needs you to be signed in with an account it accepts.'],
  403: ['Access denied', 'You are signed in, but you may not open this page. If you think you should, ask for access and quote the request ID below.'],
  404: ['Page not found', 'Nothing is served at this address. Check the link you followed.'],
  413: ['Request too large', 'What you sent is larger than this site accepts.'],
  415: ['Unsupported content', 'This site does not accept the kind of content that was sent.'],
  429: ['Too many requests', 'Wait a little, then try again.'],
  500: ['Something went wrong', 'The gateway could not answer this request. Try again; if it keeps happening, contact support with the request ID below.'],
  502: ['Application unavailable', 'The application behind this address did not answer. Try again in a moment.'],
  503: ['Temporarily unavailable', 'A service this site depends on is unavailable. Try again in a moment.'],
  504: ['Application timed out', 'The application behind this address took too long to answer. Try again in a moment.'],
};

/** CSP headers of the route's security set are replaced by the page's own policy. */
const CSP_NAMES: ReadonlySet<string> = new Set(['content-security-policy', 'content-security-policy-report-only']);
const PROBLEM_BODY_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-length']);

/** The grants a just-in-time request would satisfy: some allow rule failed only for want of one of them. */
export function grantsThatWouldAdmit(ctx: PipelineContext | undefined, err: GatewayError): readonly string[] {
  const route = ctx?.route;
  const decision = ctx?.decision;
  if (!route || !decision || decision.allow || decision.rule !== undefined || err.code !== 'GW_ERR_FORBIDDEN' || !ctx.identity) return [];
  if (route.grantRules.size === 0) return [];
  const byRule = new Map<string, string[]>();
  for (const r of decision.reasons) {
    const list = byRule.get(r.rule) ?? [];
    list.push(r.reason);
    byRule.set(r.rule, list);
  }
  const out: string[] = [];
  for (const [rule, reasons] of byRule) {
    const grants = route.grantRules.get(rule);
    if (!grants || reasons.some((x) => x !== 'grant-required')) continue;
    for (const g of grants) if (!out.includes(g)) out.push(g);
  }
  return out;
}

function loginUrl(ctx: PipelineContext | undefined, state: RuntimeState): string {
  const provider = ctx?.route?.loginProviders[0];
  if (ctx === undefined || provider === undefined || state.compiled.rp === null) return '';
  return `/.zt/login?provider=${encodeURIComponent(provider)}&return_to=${encodeURIComponent(ctx.target.path + ctx.target.query)}`;
}

const DURATIONS = ['15m', '1h', '4h', '8h'];

function requestAccessForm(state: RuntimeState, grants: readonly string[]): string {
  const e = escapeHtml;
  const options = grants.map((g) => `<option value="${e(g)}">${e(g)}</option>`).join('');
  const max = Math.min(...grants.map((g) => state.compiled.grants.get(g)?.maxDurationMs ?? Infinity));
  const durations = DURATIONS.filter((d, i) => i === 0 || parseInt(d, 10) * (d.endsWith('h') ? 3_600_000 : 60_000) <= max);
  return `<form class="ra" method="post" action="${GRANTS_PATH}"><strong>Request access</strong>
<label for="g">Access</label><select id="g" name="grant">${options}</select>
<label for="j">Why do you need it?</label><textarea id="j" name="justification" required maxlength="1000" rows="3"></textarea>
<label for="d">For how long</label><select id="d" name="duration">${durations.map((d) => `<option>${d}</option>`).join('')}</select>
<p><button type="submit">Request access</button> <a href="${GRANTS_PATH}">My requests</a></p></form>`;
}

function actions(state: RuntimeState, ctx: PipelineContext | undefined, err: GatewayError, v: PageValues, advice: string): string {
  const e = escapeHtml;
  let out = `<p>${e(advice)}</p>`;
  const signedIn = ctx?.identity?.method === 'session';
  if (v.login_url) out += `<a class="b" href="${e(v.login_url)}">${signedIn ? 'Sign in again' : 'Sign in'}</a> `;
  if (v.logout_url && signedIn) out += `<form method="post" action="${e(v.logout_url)}"><button class="s" type="submit">Sign out</button></form>`;
  const grants = grantsThatWouldAdmit(ctx, err);
  if (grants.length > 0) out += requestAccessForm(state, grants);
  return out;
}

/** Whether a refusal of this request is answered with a page (a browser navigation, a page status). */
export function wantsPage(ctx: Pick<PipelineContext, 'method' | 'rawHeaders'>, status: number): boolean {
  return PAGE_STATUSES.has(status) && isNavigation(ctx);
}

/**
 * Answers `err` with the HTML page when the request is a browser navigation; false when problem+json must
 * answer instead (not a navigation, a status without a page, or the head already sent).
 */
export function sendErrorPage(
  state: RuntimeState,
  ctx: PipelineContext | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  err: unknown,
  id: string,
  security: readonly string[],
  force = false,
): boolean {
  if (res.headersSent || res.destroyed) return false;
  const gw = err instanceof GatewayError ? err : new GatewayError('GW_ERR_INTERNAL');
  const head = ctx ?? { method: req.method ?? '', rawHeaders: req.rawHeaders };
  // A person's form post to /.zt/grants is answered for a person too.
  const person = force || (ctx !== undefined && isGrantsPath(ctx.target.path) && isPersonForm(ctx));
  if (!(person ? PAGE_STATUSES.has(gw.status) : wantsPage(head, gw.status))) return false;
  const problem = toProblem(gw, id);
  const [title, advice] = WORDS[gw.status] ?? [problem.code, ''];
  const values: PageValues = {
    status: String(gw.status),
    title,
    // An unknown error's message never reaches the client (toProblem made it a generic 500).
    detail: gw.detail,
    request_id: id,
    time: new Date().toISOString(),
    login_url: loginUrl(ctx, state),
    logout_url: state.compiled.rp === null ? '' : '/.zt/logout',
  };
  const pages = state.compiled.errorPages;
  const { body, csp } = pages.render(gw.status, values, pages.custom ? {} : { path: ctx?.target.path ?? '', actions: actions(state, ctx, gw, values, advice) });
  const headers: string[] = [];
  const named = new Set<string>();
  for (const [n, v] of problem.headers) {
    if (PROBLEM_BODY_HEADERS.has(n)) continue;
    headers.push(n, v);
    named.add(n);
  }
  for (let i = 0; i < security.length; i += 2) {
    const n = security[i] as string;
    if (CSP_NAMES.has(n) || named.has(n)) continue;
    headers.push(n, security[i + 1] as string);
  }
  headers.push('content-security-policy', csp, 'content-type', 'text/html; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'x-request-id', id);
  if (ctx) for (const c of state.compiled.rp?.pendingCookies(ctx) ?? []) headers.push('set-cookie', c);
  res.writeHead(gw.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
