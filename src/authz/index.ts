// authz/: the folder's only entry for the rest of src/.
export { usedMfa } from './conditions.ts';
export type { MfaSets } from './conditions.ts';
export { loadDeviceInventory } from './devices.ts';
export type { Device, DeviceInventory } from './devices.ts';
export { compilePolicy } from './policy.ts';
export type { Policy } from './policy.ts';
export { compileDevices } from './devices.ts';
export type { CompiledDevices } from './devices.ts';
export { compileMfa, compileRoutePolicy } from './policy.ts';
export { createBodyParamGuard, MAX_FORM_BODY } from './param-body.ts';
export type { BodyParamGuard } from './param-body.ts';
