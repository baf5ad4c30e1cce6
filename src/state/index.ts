// state/: the folder's only entry for the rest of src/.
export { TOKEN_REVOCATION_TTL_MS } from './access-types.ts';
export type { Kind } from './access-types.ts';
export { createAccessStore } from './access.ts';
export type { AccessStore, Change } from './access.ts';
export { assessAccess } from './assess.ts';
export { compileGrants } from './grant-config.ts';
export type { CompiledGrant } from './grant-config.ts';
export { GRANT_ID, activeGrantCount, approveGrant, denyGrant, grantAudit, grantView, requestGrant, revokeGrant } from './grants.ts';
export { createRedis } from './redis.ts';
export { traceRedisCommands } from './redis-trace.ts';
export { stateView } from './view.ts';
export { createSessionEnds, type SessionEndNotice, type SessionEnds } from './session-ends.ts';
export { grantState } from './access-types.ts';
