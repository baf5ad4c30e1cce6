// Glue for config compile: a route's `validate:` block → its RouteValidator, problems located in the config
// file (inline schemas) or in the OpenAPI file (its own file and line).
import { ConfigError, type ValidateConfig } from '../config/index.ts';
import type { PathTemplate } from '../routing/index.ts';
import { compileValidation } from './compile.ts';
import { createRouteValidator, type RouteValidator } from './validator.ts';

/** Throws ConfigError with `path` relative to the route (or `external` for the OpenAPI file). Not frozen: holds compiled validators. */
export function compileRouteValidator(
  cfg: ValidateConfig,
  route: { path: string; template: PathTemplate | null },
  mode: 'enforce' | 'report-only',
  baseDir: string,
): RouteValidator {
  try {
    return createRouteValidator(compileValidation(cfg, baseDir), route, mode);
  } catch (err) {
    throw err instanceof ConfigError ? err.within(['validate']) : err;
  }
}
