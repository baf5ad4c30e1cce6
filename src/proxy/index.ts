// proxy/: the folder's only entry for the rest of src/.
export { createAssertionSigner, generatedAssertionKey, loadAssertionKey, shareGeneratedAssertionKey } from './assertion.ts';
export type { AssertionSigner } from './assertion.ts';
export { appendForwardingHeaders, forward, type LiveStream, type StreamSink } from './forward.ts';
export { appendIdentityHeaders, defaultHeaderNames } from './identity-headers.ts';
export type { IdentityHeaderNames } from './identity-headers.ts';
export { scrubUpgradeResponseHeaders } from './response-headers.ts';
export type { BodyTap, ResponsePlan, ResponseEdit } from './response-headers.ts';
export { PoolRegistry, compileUpstream, rewritePath } from './upstream.ts';
export type { EndpointTarget, UpstreamTarget } from './upstream.ts';
export { Endpoint, UpstreamGroup, type EndpointCells, type GroupCells } from './balancer.ts';
export { compileHeaderMutation, mutateRequestHeaders, type HeaderMutation } from './header-rules.ts';
export { createWebSocketTerminal, isWebSocketUpgrade, notWebSocketHandshake, type WebSocketTerminal } from './websocket.ts';
export { END_TIMING, WebSocketRelay, type EndTiming, type RelayHooks } from './ws-relay.ts';
export { closeFrame } from './ws-frames.ts';
export { compileAssertion } from './assertion.ts';
export { compileIdentityHeaders, customIdentityHeaders } from './identity-headers.ts';
export { compileGroupsFilter, groupsFilterFor } from './groups-filter.ts';
export type { GroupsFilter, GroupsView } from './groups-filter.ts';
