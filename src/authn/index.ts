// authn/: the folder's only entry for the rest of src/.
export type { Authenticator, AuthRequest } from './types.ts';
export { newApiKey } from './api-key.ts';
export { credentialsFor } from './credentials.ts';
export { stripCookies } from './oidc/cookies.ts';
// The relying party itself (openid-client, the /.zt/* endpoints) is imported by compileProviders only when
// a config has an oidc provider: nothing here may re-export a value from './oidc/index.ts'.
export type { RelyingParty, RpServices } from './oidc/index.ts';
export { clientTrustChecksum, clientTrustOf, recordClientTrust } from './tls-trust.ts';
export * from './route-authentication.ts';
export { compileProviders, compileRouteAuth, compileStepUp } from './compile.ts';
export type { CompiledProviders, ProviderEntry } from './compile.ts';
export { RpState } from './oidc/state.ts';
export { checkCrossSite, compileCrossSite, isUnsafe, NO_EXCEPTIONS } from './cross-site.ts';
export type { CrossSitePolicy } from './cross-site.ts';
