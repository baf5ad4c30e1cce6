// risk/: the folder's only entry for the rest of src/.
export type { Assessment, Signal, SignalName } from './signals.ts';
export { SIGNALS, scoreOf } from './signals.ts';
export { compileRisk, type RiskSettings } from './settings.ts';
export { MemoryProfileStore, RedisProfileStore, type ProfileStore } from './store.ts';
export { assessRisk, learnRisk } from './stage.ts';
export * from './engine.ts';
export { compileRouteRisk } from './settings.ts';
