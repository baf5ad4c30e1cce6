// validate stage (after authorize, before forward): checks path segments, query, headers, then holds the
// body up to max_body and validates it. The forwarded body is the bytes received, never a re-serialization.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { type RequestContext, GatewayError, headerObjectOf, headerOf, type GatewayErrorCode, type FieldError, type ValidationReport } from '../core/index.ts';
import { parseQuery, type QueryValues } from '../normalize/index.ts';
import { extractParams, type PathTemplate } from '../routing/index.ts';
import { readBounded, replay } from './body.ts';
import type { CompiledValidation, OperationValidator } from './compile.ts';
import { FORM_TYPE, JSON_TYPE } from './media.ts';
import { parseJsonBody } from './json.ts';
import { esc } from './strict.ts';




/** undefined: stream the request as received (no body, or nothing was read). */
export type ForwardBody = Buffer | Readable | undefined;

export interface RouteValidator {
  /** Reads the request's parts from the context; `body` is only the body stream (held up to max_body). */
  check(ctx: RequestContext & { validation?: ValidationReport }, body: IncomingMessage): Promise<ForwardBody>;
}

const MAX_ERRORS = 10;
const MAX_POINTER = 200;

function fieldErrors(where: FieldError['in'], errors: readonly ErrorObject[] | null | undefined): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors ?? []) {
    if (out.length >= MAX_ERRORS) break;
    let path = e.instancePath;
    // Name the missing or unexpected field itself: its name, never its value.
    const p = e.params as { missingProperty?: string; additionalProperty?: string; unevaluatedProperty?: string };
    const name = p.missingProperty ?? p.additionalProperty ?? p.unevaluatedProperty;
    if (name !== undefined) path += `/${esc(name)}`;
    out.push({ in: where, path: path.length > MAX_POINTER ? `${path.slice(0, MAX_POINTER)}…` : path, rule: e.keyword });
  }
  return out;
}

function run(where: FieldError['in'], validate: ValidateFunction, data: unknown): FieldError[] {
  return validate(data) ? [] : fieldErrors(where, validate.errors);
}

/** Repeated names become arrays; single values stay strings (ajv coerces them to the schema's types). */
function toObject(values: QueryValues): Record<string, string | string[]> {
  // No prototype: a parameter named __proto__ is just a (refused or validated) field.
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [k, v] of values) out[k] = v.length === 1 ? (v[0] as string) : [...v];
  return out;
}

function mediaType(header: string | undefined): { type: string; charset: string | undefined } | undefined {
  if (header === undefined) return undefined;
  const [type, ...params] = header.split(';');
  let charset: string | undefined;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === 'charset') charset = p.slice(eq + 1).trim().replace(/^"|"$/g, '').toLowerCase();
  }
  return { type: (type as string).trim().toLowerCase(), charset };
}

export function createRouteValidator(
  validation: CompiledValidation,
  route: { path: string; template: PathTemplate | null },
  mode: 'enforce' | 'report-only',
): RouteValidator {
  const maxBody = validation.maxBody;
  const skip = route.template ? route.template.segments.length : -1;
  /** The path relative to the route: `/api` + `/items/7` → `/items/7`. */
  const relative = (matchPath: string): string => {
    if (skip < 0) return matchPath.slice(route.path.length) || '/';
    let pos = 0;
    for (let s = 0; s < skip && pos >= 0; s++) pos = matchPath.indexOf('/', pos + 1);
    return pos < 0 ? '/' : matchPath.slice(pos);
  };

  return {
    async check(ctx, req) {
      let bodyRead = false;
      const refuse = (code: GatewayErrorCode, errors: FieldError[], detail: string, held?: ForwardBody): ForwardBody => {
        if (mode === 'report-only') {
          ctx.validation = { code, errors };
          return held;
        }
        // A body we will not read must not be read by the next request on this connection either.
        const headers: Array<[string, string]> = ctx.hasBody && !bodyRead ? [['connection', 'close']] : [];
        throw new GatewayError(code, detail, { headers, errors });
      };
      const invalid = (errors: FieldError[], held?: ForwardBody) => refuse('GW_ERR_VALIDATION', errors, 'the request does not match the route\'s schema', held);

      const rel = relative(ctx.target.matchPath);
      const op: OperationValidator | undefined = validation.select(ctx.method, rel);
      if (op === undefined) return invalid([{ in: 'path', path: '', rule: 'operation' }]);
      if (op.path?.validate) {
        // Values from the forwarded path (with any ;params), as the app will read them: `12;abc` is not `12`.
        const errors = run('path', op.path.validate, extractParams(op.path.template, relative(ctx.target.path), true));
        if (errors.length) return invalid(errors);
      }
      if (op.query) {
        const q = parseQuery(ctx.target.query);
        const errors = q === null ? [{ in: 'query' as const, path: '', rule: 'encoding' }] : run('query', op.query, toObject(q));
        if (errors.length) return invalid(errors);
      }
      if (op.headers) {
        const errors = run('headers', op.headers, headerObjectOf(ctx));
        if (errors.length) return invalid(errors);
      }
      if (!ctx.hasBody) return op.bodyRequired ? invalid([{ in: 'body', path: '', rule: 'required' }]) : undefined;

      // Node keeps the first Content-Type; an app may read the last: validate one or refuse the body.
      let types = 0;
      for (let i = 0; i < ctx.rawHeaders.length; i += 2) if ((ctx.rawHeaders[i] as string).toLowerCase() === 'content-type') types++;
      if (types > 1) {
        return refuse('GW_ERR_UNSUPPORTED_MEDIA_TYPE', [{ in: 'headers', path: '/content-type', rule: 'duplicate' }], 'a body needs exactly one Content-Type');
      }
      const media = mediaType(headerOf(ctx, 'content-type'));
      const target = media === undefined ? undefined : op.bodies.get(media.type);
      const isJson = target?.json != null || media?.type === JSON_TYPE || media?.type.endsWith('+json') === true;
      if (target === undefined || (media?.charset !== undefined && (isJson || media.type === FORM_TYPE) && media.charset !== 'utf-8')) {
        return refuse('GW_ERR_UNSUPPORTED_MEDIA_TYPE', [{ in: 'headers', path: '/content-type', rule: 'content_types' }], 'this route does not accept that body media type');
      }
      const declared = headerOf(ctx, 'content-length');
      if (declared !== undefined && Number(declared) > maxBody) {
        return refuse('GW_ERR_BODY_TOO_LARGE', [{ in: 'body', path: '', rule: 'max_body' }], `the body exceeds ${maxBody} bytes`);
      }
      const body = await readBounded(req, maxBody);
      if (!body.complete) {
        // Over the limit while streaming (chunked): stop reading here.
        return refuse('GW_ERR_BODY_TOO_LARGE', [{ in: 'body', path: '', rule: 'max_body' }], `the body exceeds ${maxBody} bytes`, replay(body.held, req));
      }
      bodyRead = true;
      const bytes = body.bytes;
      if (isJson) {
        // Even without a schema: malformed JSON and duplicate keys never reach the app.
        const parsed = parseJsonBody(bytes);
        if ('problem' in parsed) return invalid([{ in: 'body', path: '', rule: parsed.problem }], bytes);
        const errors = target.json ? run('body', target.json, parsed.value) : [];
        if (errors.length) return invalid(errors, bytes);
      } else if (target.form) {
        const q = parseQuery(bytes.toString('latin1'));
        const errors = q === null ? [{ in: 'body' as const, path: '', rule: 'encoding' }] : run('body', target.form, toObject(q));
        if (errors.length) return invalid(errors, bytes);
      }
      return bytes;
    },
  };
}
