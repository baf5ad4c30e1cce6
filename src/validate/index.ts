// validate/: the folder's only entry for the rest of src/.
export { compileValidation } from './compile.ts';
export { readJsonBody, textField } from './json-body.ts';
export { compileRouteValidator } from './route.ts';
export * from './validator.ts';
