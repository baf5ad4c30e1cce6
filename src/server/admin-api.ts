// The admin API on the admin listener (docs/admin-api.openapi.yaml): suspend/unsuspend subjects, end their
// sessions, revoke tokens and devices, list the state, approve and revoke just-in-time grants.
// Authenticated by a client certificate (admin.tls.client_ca) or a bearer token whose SHA-256 is
// admin.token_hash; with neither configured the API does not exist (404).
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../audit/index.ts';
import { credentialsFor } from '../authn/index.ts';
import { GatewayError, sendProblem } from '../core/index.ts';
import { type Change, TOKEN_REVOCATION_TTL_MS, type Kind, approveGrant, GRANT_ID, grantAudit, grantView, revokeGrant, stateView } from '../state/index.ts';
import { readJsonBody, textField } from '../validate/index.ts';
import type { Runtime } from './runtime.ts';
import { cspViolations } from './csp-violations.ts';

export type AdminAction =
  | 'suspend' | 'unsuspend' | 'revoke-sessions' | 'revoke-token' | 'revoke-device' | 'state'
  | 'grants-list' | 'grant-approve' | 'grant-revoke' | 'csp-violations';

/** The routes the API serves; the OpenAPI file must describe exactly these (a test checks). */
export const ADMIN_ROUTES: ReadonlyArray<{ method: 'GET' | 'POST' | 'DELETE'; path: string; action: AdminAction }> = [
  { method: 'POST', path: '/admin/v1/subjects/{sub}/suspend', action: 'suspend' },
  { method: 'DELETE', path: '/admin/v1/subjects/{sub}/suspend', action: 'unsuspend' },
  { method: 'POST', path: '/admin/v1/subjects/{sub}/revoke-sessions', action: 'revoke-sessions' },
  { method: 'POST', path: '/admin/v1/tokens/{jti}/revoke', action: 'revoke-token' },
  { method: 'POST', path: '/admin/v1/devices/{id}/revoke', action: 'revoke-device' },
  { method: 'GET', path: '/admin/v1/state', action: 'state' },
  { method: 'GET', path: '/admin/v1/grants', action: 'grants-list' },
  { method: 'POST', path: '/admin/v1/grants/{id}/approve', action: 'grant-approve' },
  { method: 'POST', path: '/admin/v1/grants/{id}/revoke', action: 'grant-revoke' },
  { method: 'GET', path: '/admin/v1/csp-violations', action: 'csp-violations' },
];

/** Visible ASCII only: no spaces, controls or look-alikes in ids that end up in logs and Redis keys. */
const OPAQUE_ID = /^[\x21-\x7e]{1,256}$/;
const DEVICE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const ID_RULES: Record<string, { pattern: RegExp; what: string }> = {
  sub: { pattern: OPAQUE_ID, what: 'a subject is 1-256 visible ASCII characters' },
  jti: { pattern: OPAQUE_ID, what: 'a token id is 1-256 visible ASCII characters' },
};
const ROUTE_ID_RULES: Partial<Record<AdminAction, { pattern: RegExp; what: string }>> = {
  'revoke-device': { pattern: DEVICE_ID, what: 'a device id is 1-128 of A-Z a-z 0-9 _ . : -' },
  'grant-approve': { pattern: GRANT_ID, what: 'a grant id looks like g_ and 22 base64url characters' },
  'grant-revoke': { pattern: GRANT_ID, what: 'a grant id looks like g_ and 22 base64url characters' },
};

interface Matched {
  action: AdminAction;
  id: string | undefined;
}

const compiledRoutes = ADMIN_ROUTES.map((r) => ({ ...r, segments: r.path.split('/').slice(1) }));

/** Route by method + path; the one {param} segment is percent-decoded and checked. */
function match(method: string, rawPath: string): Matched {
  const segments = rawPath.split('/').slice(1);
  for (const r of compiledRoutes) {
    if (r.method !== method || r.segments.length !== segments.length) continue;
    let id: string | undefined;
    let param = '';
    let ok = true;
    r.segments.forEach((s, i) => {
      const got = segments[i] as string;
      if (s.startsWith('{')) {
        param = s.slice(1, -1);
        id = got;
      } else if (s !== got) ok = false;
    });
    if (!ok) continue;
    if (id !== undefined) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(id);
      } catch {
        throw new GatewayError('GW_ERR_BAD_REQUEST', `invalid percent-encoding in {${param}}`);
      }
      const rule = ROUTE_ID_RULES[r.action] ?? ID_RULES[param];
      if (rule && !rule.pattern.test(decoded)) throw new GatewayError('GW_ERR_BAD_REQUEST', rule.what);
      id = decoded;
    }
    return { action: r.action, id };
  }
  throw new GatewayError('GW_ERR_NO_ROUTE');
}

/**
 * Nothing a web page can send reaches the API: a browser holding the admin certificate (or a token in a
 * cookie-less form post) would otherwise let any page suspend subjects. Browsers mark their requests with
 * Origin (every POST/DELETE) or Sec-Fetch-Site; the CLI and scripts send neither. A body must be JSON,
 * which a form cannot send without a CORS preflight the API never answers.
 */
function refuseBrowserRequests(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (req.headers.origin !== undefined || (site !== undefined && site !== 'none')) {
    throw new GatewayError('GW_ERR_CROSS_SITE', 'the admin API does not answer requests from web pages');
  }
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (hasBody && type !== 'application/json') throw new GatewayError('GW_ERR_UNSUPPORTED_MEDIA_TYPE', 'send a JSON body (content-type: application/json)');
}

export interface AdminApiOptions {
  runtime: Runtime;
  log: Logger;
  /** The admin listener verifies client certificates against admin.tls.client_ca. */
  mtls: boolean;
}

/** Who is calling: "mtls:<CN>" or "token"; null when the credentials are missing or wrong. */
export function caller(req: IncomingMessage, tokenHash: string | undefined, mtls: boolean): string | null {
  const socket = req.socket as TLSSocket;
  if (mtls && socket.authorized === true) {
    const cn = socket.getPeerCertificate().subject?.CN;
    return `mtls:${typeof cn === 'string' ? cn : 'client'}`;
  }
  if (tokenHash === undefined) return null;
  const authorizations = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]?.toLowerCase() === 'authorization');
  if (authorizations.length !== 1) return null;
  const token = credentialsFor(req.headers.authorization, 'Bearer');
  if (token === undefined || token.length === 0 || token.length > 4096) return null;
  const presented = createHash('sha256').update(token).digest();
  const expected = Buffer.from(tokenHash, 'hex');
  return presented.length === expected.length && timingSafeEqual(presented, expected) ? 'token' : null;
}

export function createAdminApi(o: AdminApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const id = randomUUID();
    const state = o.runtime.current;
    const tokenHash = state.compiled.config.admin?.token_hash;
    let action: AdminAction | undefined;
    let actor: string | null = null;
    let target: string | undefined;
    const fail = (err: unknown) => {
      const code = sendProblem(res, err, id);
      if (actor !== null && action !== undefined && action !== 'state' && action !== 'grants-list' && action !== 'csp-violations') {
        state.audit.record(undefined, res.statusCode, code, { decision: 'admin', action, actor, target, request_id: id });
      }
      if (!(err instanceof GatewayError) || err.status >= 500) o.log.warn({ req_id: id, err: err instanceof GatewayError ? err.cause : err }, 'admin request failed');
    };
    try {
      // Off: indistinguishable from a path that does not exist.
      if (tokenHash === undefined && !o.mtls) throw new GatewayError('GW_ERR_NO_ROUTE');
      actor = caller(req, tokenHash, o.mtls);
      if (actor === null) {
        throw new GatewayError('GW_ERR_UNAUTHENTICATED', 'admin credentials are required', { headers: [['www-authenticate', 'Bearer realm="zt-gateway-admin"']] });
      }
      const url = req.url ?? '';
      const path = url.split('?', 1)[0] as string;
      if (!path.startsWith('/') || path.includes('//')) throw new GatewayError('GW_ERR_BAD_PATH');
      const m = match(req.method ?? '', path);
      action = m.action;
      target = m.id;
      refuseBrowserRequests(req);
      const who = actor;
      run(o, m, who, req).then(
        ({ status, body, audit }) => {
          if (audit) state.audit.record(undefined, status, undefined, { decision: 'admin', action: m.action, actor: who, request_id: id, ...audit });
          send(res, status, body, id);
        },
        fail,
      );
    } catch (err) {
      fail(err);
    }
  };
}

function send(res: ServerResponse, status: number, body: unknown, id: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(text)), 'cache-control', 'no-store', 'x-content-type-options', 'nosniff', 'x-request-id', id]);
  res.end(text);
}

interface Result {
  status: number;
  body: unknown;
  /** Fields of the audit record; absent for reads. */
  audit?: Record<string, unknown>;
}

async function writeState(o: AdminApiOptions, changes: Change[]): Promise<void> {
  try {
    await o.runtime.access.write(changes);
  } catch (err) {
    throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the state store is unavailable', { cause: err });
  }
}

async function run(o: AdminApiOptions, m: Matched, actor: string, req: IncomingMessage): Promise<Result> {
  const access = o.runtime.access;
  const state = o.runtime.current;
  const body = req.method === 'GET' ? undefined : await readJsonBody(req);
  const reason = textField(body, 'reason', 500, false);
  const target = m.id as string;
  const now = access.now();
  const record = (kind: Kind, extra: Record<string, unknown> = {}): Change => ({ kind, key: target, value: { at: now, by: actor, ...(reason ? { reason } : {}), ...extra } });
  switch (m.action) {
    case 'state':
      return { status: 200, body: stateView(access) };
    case 'csp-violations':
      return { status: 200, body: cspViolations(state.compiled, state.csp, new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('route')) };
    case 'grants-list':
      return { status: 200, body: { grants: [...access.list('grants').values()].map((g) => grantView(g, now)) } };
    case 'suspend':
      await writeState(o, [record('suspended')]);
      return { status: 200, body: { subject: target, suspended: true }, audit: { subject: target, reason } };
    case 'unsuspend': {
      const was = access.suspension(target) !== undefined;
      await writeState(o, [{ kind: 'suspended', key: target, value: null }]);
      return { status: 200, body: { subject: target, suspended: false, was_suspended: was }, audit: { subject: target, reason } };
    }
    case 'revoke-sessions': {
      await writeState(o, [record('sessions')]);
      let ended = 0;
      try {
        ended = (await state.compiled.rp?.revokeSessions(target, now, false)) ?? 0;
      } catch (err) {
        throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the session store is unavailable', { cause: err });
      }
      return { status: 200, body: { subject: target, sessions_revoked: true, sessions_ended: ended }, audit: { subject: target, reason, sessions_ended: ended } };
    }
    case 'revoke-token':
      await writeState(o, [record('tokens', { until: now + TOKEN_REVOCATION_TTL_MS })]);
      return { status: 200, body: { jti: target, revoked: true }, audit: { jti: target, reason } };
    case 'revoke-device':
      await writeState(o, [record('devices')]);
      return { status: 200, body: { device: target, revoked: true }, audit: { device: target, reason } };
    case 'grant-approve': {
      const approver = body?.approver;
      if (approver === null || typeof approver !== 'object' || Array.isArray(approver)) {
        throw new GatewayError('GW_ERR_BAD_REQUEST', '"approver": { "subject", "groups" } names who approves');
      }
      const a = approver as Record<string, unknown>;
      const subject = textField(a, 'subject', 256, true) as string;
      const groups = a.groups;
      if (!Array.isArray(groups) || groups.length > 100 || !groups.every((g) => typeof g === 'string' && g.length > 0 && g.length <= 256)) {
        throw new GatewayError('GW_ERR_BAD_REQUEST', '"approver.groups" must be a list of group names');
      }
      const g = await approveGrant(access, state.compiled.grants, target, { subject, groups: groups as string[] });
      return { status: 200, body: grantView(g, now), audit: grantAudit('grant.approve', g, reason, subject) };
    }
    case 'grant-revoke': {
      const g = await revokeGrant(access, target, actor);
      return { status: 200, body: grantView(g, now), audit: grantAudit('grant.revoke', g, reason, undefined) };
    }
  }
}
