export { LiveRegistry, type LiveConnection } from './registry.ts';
export { CLOSE_TEXT, END_REASONS, type EndReason, type LiveKind } from './reasons.ts';
