// authz/: the folder's only entry for the rest of src/.
export { usedMfa } from './conditions.ts';
export type { MfaSets } from './conditions.ts';
export { loadDeviceInventory } from './devices.ts';
export type { Device, DeviceInventory } from './devices.ts';
export { IDENTITY_FIELD } from './params.ts';
export { PolicyError, compilePolicy } from './policy.ts';
export type { Policy } from './policy.ts';
