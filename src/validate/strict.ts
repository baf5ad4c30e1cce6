// Prepares a schema for ajv: a fresh copy in which every object schema that does not say otherwise refuses
// unexpected fields (`additionalProperties: false`), and OpenAPI 3.0 forms are turned into JSON Schema.

export class SchemaShapeError extends Error {
  /** JSON pointer inside the schema. */
  readonly pointer: string;
  constructor(message: string, pointer: string) {
    super(message);
    this.pointer = pointer;
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const MAP_KEYWORDS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
const ONE_KEYWORDS = new Set(['not', 'if', 'then', 'else', 'additionalProperties', 'unevaluatedProperties', 'contains', 'propertyNames', 'additionalItems', 'unevaluatedItems', 'items']);
const LIST_KEYWORDS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);
const COMPOSE = ['allOf', 'anyOf', 'oneOf'] as const;
const OPEN_KEYS = ['additionalProperties', 'unevaluatedProperties', 'patternProperties'];

export interface PrepareOptions {
  /** Close object schemas that do not set additionalProperties. */
  close: boolean;
  /** OpenAPI 3.0: boolean exclusiveMinimum/exclusiveMaximum. */
  openapi30: boolean;
}

/** One JSON pointer segment. */
export const esc = (k: string): string => k.replaceAll('~', '~0').replaceAll('/', '~1');

function objectish(s: Obj): boolean {
  const t = s.type;
  if (t === 'object' || (Array.isArray(t) && t.includes('object'))) return true;
  return t === undefined && (isObj(s.properties) || Array.isArray(s.required));
}

/** Property names a composed schema knows about; undefined when a member opens itself up. */
function composedNames(s: Obj): Set<string> | undefined {
  const names = new Set<string>(isObj(s.properties) ? Object.keys(s.properties) : []);
  for (const k of COMPOSE) {
    const members = s[k];
    if (!Array.isArray(members)) continue;
    for (const m of members) {
      if (!isObj(m)) continue;
      if (OPEN_KEYS.some((o) => m[o] !== undefined && m[o] !== false)) return undefined;
      const inner = composedNames(m);
      if (inner === undefined) return undefined;
      for (const n of inner) names.add(n);
    }
  }
  return names;
}

function hasObjectMember(s: Obj): boolean {
  return COMPOSE.some((k) => Array.isArray(s[k]) && (s[k] as unknown[]).some((m) => isObj(m) && (objectish(m) || hasObjectMember(m))));
}

export function prepareSchema(schema: unknown, opts: PrepareOptions): unknown {
  const onPath = new Set<object>();
  const walk = (node: unknown, pointer: string, member: boolean): unknown => {
    if (!isObj(node)) return node;
    if (onPath.has(node)) throw new SchemaShapeError('recursive schemas are not supported for request validation', pointer);
    if (typeof node.$ref === 'string') throw new SchemaShapeError(`unresolved $ref "${node.$ref}"`, pointer);
    onPath.add(node);
    const out: Obj = {};
    for (const [k, v] of Object.entries(node)) {
      const at = `${pointer}/${esc(k)}`;
      if (MAP_KEYWORDS.has(k) && isObj(v)) {
        const m: Obj = {};
        for (const [name, sub] of Object.entries(v)) m[name] = walk(sub, `${at}/${esc(name)}`, false);
        out[k] = m;
      } else if (LIST_KEYWORDS.has(k) && Array.isArray(v)) {
        out[k] = v.map((sub, i) => walk(sub, `${at}/${i}`, COMPOSE.includes(k as (typeof COMPOSE)[number])));
      } else if (ONE_KEYWORDS.has(k)) {
        out[k] = Array.isArray(v) ? v.map((sub, i) => walk(sub, `${at}/${i}`, false)) : walk(v, at, false);
      } else out[k] = v;
    }
    if (opts.openapi30) {
      for (const [ex, lim] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
        if (typeof out[ex] !== 'boolean') continue;
        if (out[ex] === true && typeof out[lim] === 'number') out[ex] = out[lim];
        else delete out[ex];
        if (typeof out[ex] === 'number') delete out[lim];
      }
    }
    // Members of allOf/anyOf/oneOf stay open: their parent is closed over all of their names.
    if (opts.close && !member && OPEN_KEYS.every((k) => out[k] === undefined) && (objectish(out) || hasObjectMember(out))) {
      const names = composedNames(out);
      if (names !== undefined) {
        const props: Obj = isObj(out.properties) ? { ...out.properties } : {};
        for (const n of names) if (!(n in props)) props[n] = true;
        out.properties = props;
        out.additionalProperties = false;
      }
    }
    onPath.delete(node);
    return out;
  };
  return walk(schema, '', false);
}
