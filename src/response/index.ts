// response/: the folder's only entry for the rest of src/.
export { compileCors } from './cors.ts';
export type { CorsPolicy } from './cors.ts';
export { compileSecurityHeaders } from './security-headers.ts';
export type { SecurityHeaderSet } from './security-headers.ts';
export { BUILTIN_TEMPLATE, compileErrorPages, escapeHtml, PAGE_PLACEHOLDERS } from './error-page.ts';
export type { ErrorPages, PageExtras, PagePlaceholder, PageValues } from './error-page.ts';
