// Why a live connection (an upgraded WebSocket, a response still streaming) ended: the audit record's
// `end_reason`, the `reason` label of zt_live_connection_closes_total, and the WebSocket close frame's text.

export type LiveKind = 'websocket' | 'stream';

/** client/upstream: one side closed; shutdown: the gateway stops; the rest: the trust that admitted it ended. */
export type EndReason = 'client' | 'upstream' | 'logout' | 'revoked' | 'suspended' | 'expired' | 'policy' | 'lifetime' | 'shutdown';

export const END_REASONS: readonly EndReason[] = Object.freeze(['client', 'upstream', 'logout', 'revoked', 'suspended', 'expired', 'policy', 'lifetime', 'shutdown']);

/** The close frame's reason text (1008 policy violation; 1001 going away for shutdown). */
export const CLOSE_TEXT: Readonly<Record<EndReason, string>> = Object.freeze({
  client: 'client closed',
  upstream: 'upstream closed',
  logout: 'session ended',
  revoked: 'credential revoked',
  suspended: 'subject suspended',
  expired: 'credential expired',
  policy: 'access denied by policy',
  lifetime: 'connection lifetime reached',
  shutdown: 'gateway shutting down',
});
