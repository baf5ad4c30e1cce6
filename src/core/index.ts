// core/: the folder's only entry for the rest of src/.
export { listenOn, splitAddress } from './address.ts';
export { readBoundedBody, readRequestBody } from './bounded-body.ts';
export type { RequestContext, RouteRef } from './context.ts';
export { ERROR_CODES, GatewayError, toProblem } from './errors.ts';
export type { GatewayErrorCode, ProblemResponse } from './errors.ts';
export { identityFromJson, identityToJson } from './identity.ts';
export type { Identity } from './identity.ts';
export { sendProblem, writeProblemToSocket } from './problem.ts';
export { REASONS } from './reasons.ts';
export type { Reason } from './reasons.ts';
export { Redirect } from './redirect.ts';
export type { CanonicalHost, CanonicalTarget, Decision, FieldError, RuleReason, ValidationReport } from './request.ts';
export { headerObjectOf, headerOf } from './headers.ts';
export { parseCidr } from './cidr.ts';
export { parseTemplate } from './path-template.ts';
export type { PathTemplate, TemplateSegment } from './path-template.ts';
export { canonicalPath, hexAt } from './path.ts';
