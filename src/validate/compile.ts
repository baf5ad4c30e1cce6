// Compiles a route's `validate:` block at config load: one OperationValidator per OpenAPI operation (found
// at request time by method and path template relative to the route), or one for the inline schemas.
import { ConfigError, type ValidateConfig } from '../config/index.ts';
import { resolve } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { matchTemplate, parseTemplate, type PathTemplate } from '../routing/index.ts';
import { createCompilers, type Compilers, type Dialect } from './ajv.ts';
import { loadOpenApi, OpenApiError, pointerSegments } from './openapi-load.ts';
import { esc, prepareSchema, SchemaShapeError } from './strict.ts';
import { FORM_TYPE, JSON_TYPE } from './media.ts';

const DEFAULT_TYPES = [JSON_TYPE, FORM_TYPE];
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

export interface OperationValidator {
  readonly query: ValidateFunction | null;
  readonly headers: ValidateFunction | null;
  /** Named path segments (OpenAPI path parameters), matched relative to the route. */
  readonly path: { template: PathTemplate; validate: ValidateFunction | null } | null;
  /** Media type → body validator (null: allowed, not schema-checked). */
  readonly bodies: ReadonlyMap<string, { json: ValidateFunction | null; form: ValidateFunction | null }>;
  readonly bodyRequired: boolean;
}

export interface CompiledValidation {
  readonly maxBody: number;
  /** The operation for a method and a path relative to the route ('/…'); undefined: not in the API. */
  select(method: string, relativePath: string): OperationValidator | undefined;
}

/** A problem in the OpenAPI file: reported in that file (at its line), keyed by `validate.openapi`. */
function openApiError(message: string, file: string, line: number | undefined): ConfigError {
  return new ConfigError('CFG_BAD_FILE', ['openapi'], message, { external: { file, line } });
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Locator {
  fail(message: string, pointer: string): never;
}

function compileSchema(c: Compilers, kind: 'json' | 'text', schema: unknown, close: boolean, openapi30: boolean, pointer: string, at: Locator): ValidateFunction {
  let prepared: unknown;
  try {
    prepared = prepareSchema(schema, { close, openapi30 });
  } catch (err) {
    if (err instanceof SchemaShapeError) at.fail(err.message, pointer + err.pointer);
    throw err;
  }
  try {
    return kind === 'json' ? c.json(prepared) : c.text(prepared);
  } catch (err) {
    // Point at the failing keyword when the meta-schema can say which one (strict-mode errors name it).
    const why = c.explain(prepared);
    if (why) at.fail(`invalid schema: ${why.message}`, pointer + why.pointer);
    at.fail(`invalid schema: ${(err as Error).message}`, pointer);
  }
}

function bodiesFor(types: readonly string[], schema: unknown, c: Compilers, openapi30: boolean, pointer: (t: string) => string, at: Locator) {
  const out = new Map<string, { json: ValidateFunction | null; form: ValidateFunction | null }>();
  for (const t of types) {
    const s = typeof schema === 'function' ? (schema as (t: string) => unknown)(t) : schema;
    if (s === undefined) out.set(t, { json: null, form: null });
    else if (t === JSON_TYPE || t.endsWith('+json')) out.set(t, { json: compileSchema(c, 'json', s, true, openapi30, pointer(t), at), form: null });
    else if (t === FORM_TYPE) out.set(t, { json: null, form: compileSchema(c, 'text', s, true, openapi30, pointer(t), at) });
    else out.set(t, { json: null, form: null });
  }
  return out;
}

function compileInline(cfg: ValidateConfig): CompiledValidation {
  const c = createCompilers('inline');
  const at = (key: string): Locator => ({
    fail: (message, pointer) => {
      throw new ConfigError('CFG_BAD_VALUE', [key, ...pointerSegments(pointer)], message);
    },
  });
  const op: OperationValidator = {
    query: cfg.query === undefined ? null : compileSchema(c, 'text', cfg.query, true, false, '', at('query')),
    headers: cfg.headers === undefined ? null : compileSchema(c, 'text', cfg.headers, false, false, '', at('headers')),
    path: null,
    bodies: bodiesFor(cfg.content_types ?? DEFAULT_TYPES, cfg.body, c, false, () => '', at('body')),
    bodyRequired: false,
  };
  return { maxBody: cfg.max_body, select: () => op };
}

function parameterSchema(params: Obj[], where: 'query' | 'header', pointerOf: (p: Obj) => string, at: Locator): { schema: Obj; pointer: string } | null {
  const list = params.filter((p) => p.in === where);
  if (list.length === 0 && where === 'header') return null;
  const properties: Obj = {};
  const required: string[] = [];
  for (const p of list) {
    const name = where === 'header' ? String(p.name).toLowerCase() : String(p.name);
    if (p.content !== undefined) at.fail(`parameter "${name}": content-encoded parameters are not supported`, pointerOf(p));
    properties[name] = p.schema ?? {};
    if (p.required === true) required.push(name);
  }
  return { schema: { type: 'object', properties, ...(required.length ? { required } : {}) }, pointer: list[0] ? pointerOf(list[0]) : '' };
}

function compileOpenApi(cfg: ValidateConfig, baseDir: string): CompiledValidation {
  const file = resolve(baseDir, cfg.openapi as string);
  let doc;
  try {
    doc = loadOpenApi(file);
  } catch (err) {
    if (err instanceof OpenApiError) throw openApiError(err.message, cfg.openapi as string, err.line || undefined);
    throw err;
  }
  const dialect: Dialect = doc.version === '3.0' ? 'openapi-3.0' : 'openapi-3.1';
  const openapi30 = doc.version === '3.0';
  const c = createCompilers(dialect);
  const at: Locator = {
    fail: (message, pointer) => {
      const line = doc.lineOf(pointer);
      throw openApiError(`${pointer ? `${pointer}: ` : ''}${message}`, cfg.openapi as string, line || undefined);
    },
  };
  const literal = new Map<string, OperationValidator>(); // `METHOD /path`
  const templated = new Map<string, Array<{ template: PathTemplate; op: OperationValidator; literals: number }>>();
  const paths = isObj(doc.api.paths) ? doc.api.paths : {};
  for (const [pathKey, item] of Object.entries(paths)) {
    if (!isObj(item)) continue;
    const itemPointer = `/paths/${esc(pathKey)}`;
    let template: PathTemplate | undefined;
    try {
      template = parseTemplate(pathKey);
    } catch (err) {
      at.fail(`unsupported path template: ${(err as Error).message}`, itemPointer);
    }
    const shared = Array.isArray(item.parameters) ? (item.parameters as Obj[]) : [];
    for (const method of METHODS) {
      const operation = item[method];
      if (!isObj(operation)) continue;
      const opPointer = `${itemPointer}/${method}`;
      const own = Array.isArray(operation.parameters) ? (operation.parameters as Obj[]) : [];
      // Operation parameters override path-item ones with the same name and location.
      const params = [...shared.filter((s) => !own.some((o) => o.name === s.name && o.in === s.in)), ...own];
      for (const list of [shared, own]) {
        list.forEach((p, i) => {
          if (list.findIndex((o) => o.name === p.name && o.in === p.in) !== i) {
            at.fail(`duplicate ${String(p.in)} parameter "${String(p.name)}"`, list === own ? `${opPointer}/parameters/${i}` : `${itemPointer}/parameters/${i}`);
          }
        });
      }
      const pointerOf = (p: Obj) => {
        const i = own.indexOf(p);
        return i >= 0 ? `${opPointer}/parameters/${i}` : `${itemPointer}/parameters/${shared.indexOf(p)}`;
      };
      const q = parameterSchema(params, 'query', pointerOf, at);
      const h = parameterSchema(params, 'header', pointerOf, at);
      const pathParams = params.filter((p) => p.in === 'path');
      let pathPart: OperationValidator['path'] = null;
      if (template) {
        const properties: Obj = {};
        for (const p of pathParams) properties[String(p.name)] = p.schema ?? {};
        const schema = { type: 'object', properties };
        pathPart = { template, validate: pathParams.length ? compileSchema(c, 'text', schema, false, openapi30, opPointer, at) : null };
      }
      const body = isObj(operation.requestBody) ? operation.requestBody : undefined;
      const content = body && isObj(body.content) ? body.content : {};
      const declared = Object.keys(content).map((t) => t.toLowerCase());
      const types = cfg.content_types ?? declared;
      const op: OperationValidator = {
        query: q ? compileSchema(c, 'text', q.schema, true, openapi30, q.pointer || opPointer, at) : null,
        headers: h ? compileSchema(c, 'text', h.schema, false, openapi30, h.pointer, at) : null,
        path: pathPart,
        bodies: bodiesFor(
          types,
          (t: string) => {
            const key = Object.keys(content).find((k) => k.toLowerCase() === t);
            const media = key === undefined ? undefined : content[key];
            return isObj(media) ? media.schema : undefined;
          },
          c,
          openapi30,
          (t) => `${opPointer}/requestBody/content/${esc(Object.keys(content).find((k) => k.toLowerCase() === t) ?? t)}/schema`,
          at,
        ),
        bodyRequired: body?.required === true,
      };
      const M = method.toUpperCase();
      if (!template) literal.set(`${M} ${pathKey}`, op);
      else {
        let list = templated.get(M);
        if (!list) templated.set(M, (list = []));
        list.push({ template, op, literals: template.segments.filter((s) => 'literal' in s).length });
      }
    }
  }
  // OpenAPI: concrete paths win over templated ones; among templates, the one with more literal segments.
  for (const list of templated.values()) list.sort((a, b) => b.literals - a.literals);
  return {
    maxBody: cfg.max_body,
    select(method, relativePath) {
      const find = (m: string) => {
        const hit = literal.get(`${m} ${relativePath}`);
        if (hit) return hit;
        const list = templated.get(m);
        if (list) for (const t of list) if (matchTemplate(t.template, relativePath, true)) return t.op;
        return undefined;
      };
      // HEAD is GET without the body (RFC 9110): an API that documents GET answers HEAD too.
      return find(method) ?? (method === 'HEAD' ? find('GET') : undefined);
    },
  };
}

/** Throws ConfigError: `path` under the validate block, or `external` for a problem in the OpenAPI file. */
export function compileValidation(cfg: ValidateConfig, baseDir: string): CompiledValidation {
  return cfg.openapi !== undefined ? compileOpenApi(cfg, baseDir) : compileInline(cfg);
}
