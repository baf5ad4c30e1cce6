// server/: the folder's only entry for the rest of src/.
export { adoptPrimaryKeys, announceWorker, isWorker, parseWorkers, reportGeneration, runPrimary, workerId } from './cluster.ts';
export { Gateway, loadAndCompile } from './gateway.ts';
