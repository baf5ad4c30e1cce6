// response/: the folder's only entry for the rest of src/.
export { compileCors } from './cors.ts';
export type { CorsPolicy } from './cors.ts';
export { compileSecurityHeaders } from './security-headers.ts';
export type { SecurityHeaderSet } from './security-headers.ts';
