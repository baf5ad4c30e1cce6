// config/: the folder's only entry for the rest of src/.
export { DURATION_PATTERN, parseDuration } from './duration.ts';
export { ConfigError, ConfigPathError, formatPath } from './errors.ts';
export type { ConfigProblem } from './errors.ts';
export { loadConfigFile } from './load.ts';
export type { LoadedConfig } from './load.ts';
export { configJsonSchema, configSchema } from './schema.ts';
export type { AuthorizeConfig, Config, CorsConfig, IdentityProviderConfig, OidcProviderConfig, RateLimitConfig, RedisSentinelConfig, RiskConfig, RouteConfig, RuleConfig, SecurityHeadersConfig, UpstreamConfig } from './schema.ts';
