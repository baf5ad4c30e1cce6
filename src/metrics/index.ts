// metrics/: the folder's only entry for the rest of src/.
export { factsFromError, recordRequest } from './record.ts';
export type { RequestFacts } from './record.ts';
export * from './metrics.ts';
export { buildInfo, readBuildInfo, versionLine, BUILD_INFO_FILE } from './build-info.ts';
export type { BuildInfo } from './build-info.ts';
