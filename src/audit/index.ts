// audit/: the folder's only entry for the rest of src/.
export { createAuditLog, decisionKind } from './audit.ts';
export type { AuditLog } from './audit.ts';
export { chainVerifier } from './chain.ts';
export { createLogger } from './logger.ts';
export type { Logger } from './logger.ts';
