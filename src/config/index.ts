// config/: the folder's only entry for the rest of src/.
export { DURATION_PATTERN, parseDuration } from './duration.ts';
export { ConfigError, formatPath } from './errors.ts';
export type { ConfigProblem } from './errors.ts';
export { loadConfigFile } from './load.ts';
export type { LoadedConfig } from './load.ts';
export { configJsonSchema, configSchema } from './schema.ts';
export type { AuthorizeConfig, Config, CorsConfig, ExtAuthzConfig, GithubProviderConfig, IdentityProviderConfig, OidcProviderConfig, RateLimitConfig, RedisSentinelConfig, RiskConfig, RouteConfig, RuleConfig, GroupsFilterConfig, SecurityHeadersConfig, UpstreamConfig } from './schema.ts';
export { GROUP_PATTERN_REGEX, HOST_PATTERN, IDENTITY_FIELD } from './checks.ts';
export { crossKeyProblems, metricsAccess } from './cross-checks.ts';
export { CONFIG_INVALID } from './errors.ts';
export type { ConfigReport, KeyPath } from './errors.ts';
export { freezeData } from './freeze.ts';
export type { ValidateConfig } from './schema-validate.ts';
export { materialFiles } from './material-files.ts';
export type { MaterialFile } from './material-files.ts';
