// Glue for config compile: a route's `validate:` block → its RouteValidator, problems located in the config
// file (inline schemas) or in the OpenAPI file (its own file and line).
import { ConfigError } from '../config/errors.ts';
import type { ValidateConfig } from '../config/schema-validate.ts';
import type { PathTemplate } from '../routing/template.ts';
import { compileValidation, createRouteValidator, type RouteValidator } from './index.ts';

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
