// The validation compiler (ajv, ajv-formats and the OpenAPI loader) is imported when a config first has a
// route with `validate:`: an idle gateway without one never loads it (~11 MB RSS for ajv alone).
import type { compileRouteValidator } from './route.ts';

export type RouteValidatorCompiler = typeof compileRouteValidator;

export async function loadRouteValidatorCompiler(): Promise<RouteValidatorCompiler> {
  return (await import('./route.ts')).compileRouteValidator;
}
