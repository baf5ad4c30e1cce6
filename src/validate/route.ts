// Glue for config compile: a route's `validate:` block → its RouteValidator, problems located in the config
// file (inline schemas) or in the OpenAPI file (its own file and line).
import type { ConfigProblem } from '../config/index.ts';
import type { PathTemplate } from '../routing/index.ts';
import type { ValidateConfig } from './config.ts';
import { compileValidation, ValidateConfigError } from './compile.ts';
import { createRouteValidator, type RouteValidator } from './validator.ts';

export function compileRouteValidator(
  cfg: ValidateConfig,
  route: { path: string; template: PathTemplate | null },
  mode: 'enforce' | 'report-only',
  baseDir: string,
  at: (path: PropertyKey[], message: string) => void,
  problems: ConfigProblem[],
): RouteValidator | null {
  try {
    return createRouteValidator(compileValidation(cfg, baseDir), route, mode);
  } catch (err) {
    if (!(err instanceof ValidateConfigError)) throw err;
    if (err.file === undefined) at(['validate', ...err.path], err.message);
    else problems.push({ file: err.file, path: '', message: err.message, ...(err.line ? { line: err.line, col: 1 } : {}) });
    return null;
  }
}
