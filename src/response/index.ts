// response/: the folder's only entry for the rest of src/.
export { compileCors } from './cors.ts';
export type { CorsPolicy } from './cors.ts';
export { compileSecurityHeaders, withCspReportToken, CSP_REPORT_PREFIX } from './security-headers.ts';
export type { CompiledCsp, SecurityHeaderSet } from './security-headers.ts';
export { cspReportToken, cspTokenKey, CSP_TOKEN, processCspKey, shareProcessCspKey, type CspTokenKey } from './csp-token.ts';
export { CspStore, LEARN_PAGES, LEARN_PAGE_BYTES, MAX_KEYS, REPORTS_PER_MINUTE } from './csp-store.ts';
export type { CspStoreOptions, CspViolationView, LearnedDirective } from './csp-store.ts';
export { parseCspReport, CspReportError, type CspViolation, type CspReportFormat } from './csp-report.ts';
export { createLearnTap, inlineHashes, type CspLearnTap } from './csp-learn.ts';
export { BUILTIN_TEMPLATE, compileErrorPages, escapeHtml, PAGE_PLACEHOLDERS } from './error-page.ts';
export type { ErrorPages, PageExtras, PagePlaceholder, PageValues } from './error-page.ts';
