// normalize/: the folder's only entry for the rest of src/.
export { compileAddressSet, limitKey, plainAddress } from './cidr.ts';
export type { AddressSet } from './cidr.ts';
export { describedContext, forwardedContext } from './forward-auth.ts';
export type { DescribedRequest } from './forward-auth.ts';
export { forwardedElement } from './forwarded.ts';
export { paramKeys, parseQuery, parseQuerySpellings } from './query.ts';
export type { QueryValues } from './query.ts';
export { canonicalPath, canonicalTarget } from './target.ts';
export * from './normalizer.ts';
export { compileTrustedProxies } from './cidr.ts';
export { foldPath, foldText } from './case-fold.ts';
export { compilePublicOrigins, normalizeOrigin } from './origin.ts';
export type { MismatchReport, PublicOrigins } from './origin.ts';
export { traceIdOf } from './trace.ts';
