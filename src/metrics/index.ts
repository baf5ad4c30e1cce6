// metrics/: the folder's only entry for the rest of src/.
export { factsFromError, recordRequest } from './record.ts';
export type { RequestFacts } from './record.ts';
export * from './metrics.ts';
