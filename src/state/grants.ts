// Just-in-time grants: request (by the user, on /.zt/grants), approve (by a member of an approver group,
// never the requester), revoke. A grant is active from approval for its duration, then lapses by the clock.
import { randomBytes } from 'node:crypto';
import { type Identity, GatewayError } from '../core/index.ts';
import { DURATION_PATTERN, parseDuration } from '../config/index.ts';
import { textField } from '../validate/index.ts';
import { StaleChangeError, type AccessStore } from './access.ts';
import { grantState, type Grant } from './access-types.ts';
import type { CompiledGrant } from './grant-config.ts';

/** Open (pending) requests one caller may have at once: each is stored and announced to every instance. */
const MAX_PENDING_PER_SUBJECT = 5;

export const GRANT_ID = /^g_[A-Za-z0-9_-]{22}$/;

export interface Approver {
  readonly subject: string;
  readonly groups: readonly string[];
}

type Grants = ReadonlyMap<string, CompiledGrant>;

/** The gauge the metrics stage exports: grants approved and not yet expired or revoked. */
export function activeGrantCount(store: AccessStore): number {
  return store.activeGrantCount();
}

export async function requestGrant(store: AccessStore, grants: Grants, identity: Identity, body: Record<string, unknown> | undefined): Promise<Grant> {
  const name = textField(body, 'grant', 64, true) as string;
  const cfg = grants.get(name);
  if (!cfg) throw new GatewayError('GW_ERR_BAD_REQUEST', `unknown grant "${name}"`);
  const justification = textField(body, 'justification', 1000, true) as string;
  const duration = textField(body, 'duration', 16, true) as string;
  if (!DURATION_PATTERN.test(duration)) throw new GatewayError('GW_ERR_BAD_REQUEST', '"duration" looks like 30m or 2h');
  const durationMs = parseDuration(duration);
  if (durationMs <= 0 || durationMs > cfg.maxDurationMs) {
    throw new GatewayError('GW_ERR_BAD_REQUEST', `"duration" must be more than 0 and at most ${cfg.maxDurationMs / 1000}s for ${name}`);
  }
  const now = store.now();
  // Each request is stored (and announced to every instance): a caller may hold only a few open at once.
  let open = 0;
  for (const g of store.list('grants').values()) {
    if (g.provider === identity.provider && g.subject === identity.subject && grantState(g, now) === 'pending') open++;
  }
  if (open >= MAX_PENDING_PER_SUBJECT) {
    throw new GatewayError('GW_ERR_RATE_LIMITED', `at most ${MAX_PENDING_PER_SUBJECT} grant requests may wait for approval at once`);
  }
  const grant: Grant = {
    id: `g_${randomBytes(16).toString('base64url')}`,
    grant: name,
    subject: identity.subject,
    provider: identity.provider,
    justification,
    durationMs,
    status: 'pending',
    requestedAt: now,
    requestExpiresAt: now + cfg.requestTtlMs,
  };
  await write(store, grant);
  return grant;
}

/** The checks an approval and a denial share: a pending request, an approver in one of its groups, not its requester. */
function decidable(store: AccessStore, grants: Grants, id: string, approver: Approver): Grant {
  const g = find(store, id);
  const now = store.now();
  const state = grantState(g, now);
  if (state !== 'pending') throw new GatewayError('GW_ERR_BAD_REQUEST', `the grant request is ${state}, not pending`);
  const cfg = grants.get(g.grant);
  if (!cfg) throw new GatewayError('GW_ERR_BAD_REQUEST', `grant "${g.grant}" is no longer configured`);
  if (approver.subject === g.subject) throw new GatewayError('GW_ERR_FORBIDDEN', 'a grant cannot be approved by its requester');
  if (!approver.groups.some((group) => cfg.approvers.has(group))) {
    throw new GatewayError('GW_ERR_FORBIDDEN', `the approver is not in an approver group of ${g.grant}`);
  }
  return g;
}

export async function approveGrant(store: AccessStore, grants: Grants, id: string, approver: Approver): Promise<Grant> {
  const g = decidable(store, grants, id, approver);
  const now = store.now();
  const approved: Grant = { ...g, status: 'approved', approvedAt: now, approvedBy: approver.subject, expiresAt: now + g.durationMs };
  await write(store, approved, g);
  return approved;
}

/** An approver refuses a pending request: it is kept (state denied) for the requester to see, never active. */
export async function denyGrant(store: AccessStore, grants: Grants, id: string, approver: Approver): Promise<Grant> {
  const g = decidable(store, grants, id, approver);
  const denied: Grant = { ...g, status: 'denied', deniedAt: store.now(), deniedBy: approver.subject };
  await write(store, denied, g);
  return denied;
}

export async function revokeGrant(store: AccessStore, id: string, by: string): Promise<Grant> {
  const g = find(store, id);
  if (g.status === 'revoked') return g;
  const revoked: Grant = { ...g, status: 'revoked', revokedAt: store.now(), revokedBy: by };
  await write(store, revoked, g);
  return revoked;
}

function find(store: AccessStore, id: string): Grant {
  const g = store.get('grants', id);
  if (!g) throw new GatewayError('GW_ERR_NO_ROUTE', 'no such grant request');
  return g;
}

/** Writes `g`; with `was`, only if the stored record is still the one the decision was made on. */
async function write(store: AccessStore, g: Grant, was?: Grant): Promise<void> {
  try {
    await store.write([{ kind: 'grants', key: g.id, value: g, ...(was ? { expected: was } : {}) }]);
  } catch (err) {
    if (err instanceof StaleChangeError) throw new GatewayError('GW_ERR_BAD_REQUEST', 'the grant changed meanwhile (approved or revoked elsewhere): look it up again');
    throw new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the state store is unavailable', { cause: err });
  }
}

/** The grant fields of an audit record (request, approval, revocation, expiry). */
export function grantAudit(event: string, g: Grant, reason: string | undefined, approver: string | undefined): Record<string, unknown> {
  return { event, grant_id: g.id, grant: g.grant, subject: g.subject, duration_ms: g.durationMs, reason, approver };
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The JSON form shown by the admin API, /.zt/grants and the CLI. */
export function grantView(g: Grant, nowMs: number): Record<string, unknown> {
  return {
    id: g.id,
    grant: g.grant,
    subject: g.subject,
    provider: g.provider,
    justification: g.justification,
    duration_s: g.durationMs / 1000,
    state: grantState(g, nowMs),
    requested_at: iso(g.requestedAt),
    request_expires_at: iso(g.requestExpiresAt),
    approved_at: iso(g.approvedAt),
    approved_by: g.approvedBy,
    expires_at: iso(g.expiresAt),
    revoked_at: iso(g.revokedAt),
    revoked_by: g.revokedBy,
    denied_at: iso(g.deniedAt),
    denied_by: g.deniedBy,
  };
}
