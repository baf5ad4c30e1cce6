// validate/: the folder's only entry for the rest of src/.
export { readJsonBody, textField } from './json-body.ts';
export { loadRouteValidatorCompiler, type RouteValidatorCompiler } from './load.ts';
export * from './validator.ts';
