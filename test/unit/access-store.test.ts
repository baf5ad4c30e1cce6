// The memory access store and the grant rules, with a fake clock (used here only for expiry boundaries).
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Identity } from '../../src/core/identity.ts';
import { createAccessStore, type AccessStore } from '../../src/state/access.ts';
import { grantState } from '../../src/state/access-types.ts';
import type { CompiledGrant } from '../../src/state/grant-config.ts';
import { activeGrantCount, approveGrant, requestGrant, revokeGrant } from '../../src/state/grants.ts';

let clock = Date.parse('2026-12-01T10:00:00Z');
const stores: AccessStore[] = [];
function store(): AccessStore {
  const s = createAccessStore({ redis: null, log: pino({ level: 'silent' }), maxStalenessMs: 3000, now: () => clock });
  stores.push(s);
  return s;
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

const grants = new Map<string, CompiledGrant>([
  ['prod-db-admin', { name: 'prod-db-admin', approvers: new Set(['dba']), maxDurationMs: 8 * 3_600_000, requestTtlMs: 3_600_000, authenticate: null }],
]);
const who = (subject: string, provider = 'corp'): Identity => ({
  subject, provider, issuer: undefined, method: 'session', email: undefined, emailVerified: false, groups: [], claims: {},
  spiffeId: undefined, authTime: undefined, amr: [], acr: undefined, expiresAt: undefined,
});
const body = (duration: string) => ({ grant: 'prod-db-admin', justification: 'INC-7', duration });

describe('grants with a fake clock', () => {
  it('is active from approval for exactly its duration, for that provider and subject only', async () => {
    const s = store();
    const g = await requestGrant(s, grants, who('alice'), body('8h'));
    expect(s.hasGrant('corp', 'alice', 'prod-db-admin', clock)).toBe(false);
    clock += 60_000;
    const approved = await approveGrant(s, grants, g.id, { subject: 'bob', groups: ['dba'] });
    expect(approved.expiresAt).toBe(clock + 8 * 3_600_000);
    expect(s.hasGrant('corp', 'alice', 'prod-db-admin', clock)).toBe(true);
    expect(s.hasGrant('ci', 'alice', 'prod-db-admin', clock)).toBe(false);
    expect(s.hasGrant('corp', 'alicia', 'prod-db-admin', clock)).toBe(false);
    expect(s.hasGrant('corp', 'alice', 'other', clock)).toBe(false);
    expect(activeGrantCount(s)).toBe(1);
    const end = approved.expiresAt as number;
    expect(s.hasGrant('corp', 'alice', 'prod-db-admin', end - 1)).toBe(true);
    expect(s.hasGrant('corp', 'alice', 'prod-db-admin', end)).toBe(false);
    clock = end;
    expect(grantState(approved, clock)).toBe('expired');
    expect(activeGrantCount(s)).toBe(0);
  });

  it('a pending request lapses after request_ttl and can no longer be approved', async () => {
    const s = store();
    const g = await requestGrant(s, grants, who('carol'), body('1h'));
    clock += 3_600_000;
    await expect(approveGrant(s, grants, g.id, { subject: 'bob', groups: ['dba'] })).rejects.toMatchObject({ code: 'GW_ERR_BAD_REQUEST', detail: 'the grant request is lapsed, not pending' });
    expect(s.hasGrant('corp', 'carol', 'prod-db-admin', clock)).toBe(false);
  });

  it('refuses self-approval, non-approvers, durations above max, and approval after revocation', async () => {
    const s = store();
    const g = await requestGrant(s, grants, who('dave'), body('30m'));
    await expect(approveGrant(s, grants, g.id, { subject: 'dave', groups: ['dba'] })).rejects.toMatchObject({ code: 'GW_ERR_FORBIDDEN' });
    await expect(approveGrant(s, grants, g.id, { subject: 'eve', groups: ['DBA', 'dba '] })).rejects.toMatchObject({ code: 'GW_ERR_FORBIDDEN' });
    await expect(requestGrant(s, grants, who('dave'), body('9h'))).rejects.toMatchObject({ code: 'GW_ERR_BAD_REQUEST' });
    await expect(requestGrant(s, grants, who('dave'), body('481m'))).rejects.toMatchObject({ code: 'GW_ERR_BAD_REQUEST' });
    expect((await requestGrant(s, grants, who('dave'), body('480m'))).durationMs).toBe(8 * 3_600_000);
    await revokeGrant(s, g.id, 'admin');
    await expect(approveGrant(s, grants, g.id, { subject: 'bob', groups: ['dba'] })).rejects.toMatchObject({ detail: 'the grant request is revoked, not pending' });
    expect(s.hasGrant('corp', 'dave', 'prod-db-admin', clock)).toBe(false);
  });

  it('forgets ended grants a day after they end, and revoked tokens after their retention', async () => {
    const s = store();
    const g = await requestGrant(s, grants, who('fay'), body('1h'));
    await approveGrant(s, grants, g.id, { subject: 'bob', groups: ['dba'] });
    await s.write([{ kind: 'tokens', key: 'j1', value: { at: clock, by: 't', until: clock + 1000 } }]);
    clock += 25 * 3_600_000;
    await s.write([{ kind: 'suspended', key: 'x', value: { at: clock, by: 't' } }]); // any write prunes
    expect(s.get('grants', g.id)).toBeUndefined();
    expect(s.tokenRevoked('j1')).toBe(false);
    expect(s.suspension('x')).toMatchObject({ by: 't' });
  });

  it('a memory store is always fresh', () => {
    const s = store();
    expect(s.kind).toBe('memory');
    expect(s.fresh()).toBe(true);
  });
});
