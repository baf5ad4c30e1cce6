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
