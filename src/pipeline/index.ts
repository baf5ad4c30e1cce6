// pipeline/: the folder's only entry for the rest of src/.
export { createRequestHandler } from './handler.ts';
export { prepareAdmission } from './admit.ts';
export type { CompiledRoute, PipelineContext } from './route.ts';
export { createUpgradeHandler } from './upgrade.ts';
export type { RuntimeHandle, RuntimeState } from './state.ts';
export { compileConfig } from './compile.ts';
export type { CompileOptions, CompiledConfig } from './compile.ts';
export { compileTlsMaterial, type TlsMaterial } from './tls-material.ts';
export { judgeLive, judgedByClock, sessionEndCovers } from './live-checks.ts';
export type { ExtAuthzListener } from './ext-authz-listener.ts';
export { checkContext, decideCheck, EXT_AUTHZ_PREFIX, NO_CLIENT_TLS } from './ext-authz.ts';
export type { CheckAnswer, CheckInput } from './ext-authz.ts';
export { runEnvoyCheck } from './ext-authz-envoy.ts';
export type { EnvoyCaller, EnvoyCheckRequest, EnvoyCheckResult } from './ext-authz-envoy.ts';
export { stepUpNeeded, type StepUpNeed } from './chain.ts';
