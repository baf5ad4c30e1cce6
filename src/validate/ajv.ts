// The ajv instances one config load compiles with (never per request). allErrors off: the first failure
// ends validation, so a hostile 10,000-element array costs one walk at most.
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';

type FormatsPlugin = (ajv: Ajv | Ajv2020) => unknown;
const addFormats = ((formatsModule as unknown as { default?: FormatsPlugin }).default ?? formatsModule) as unknown as FormatsPlugin;

export type Dialect = 'inline' | 'openapi-3.0' | 'openapi-3.1';

/** OpenAPI annotations that are not JSON Schema keywords. */
const OPENAPI_KEYWORDS = ['example', 'xml', 'externalDocs', 'discriminator'];

export interface Compilers {
  /** JSON bodies: types as sent. */
  json(schema: unknown): ValidateFunction;
  /** Query, headers, path segments and form bodies: strings, coerced to the schema's types. */
  text(schema: unknown): ValidateFunction;
  /** Why a schema does not compile: the first meta-schema error, with its pointer inside the schema. */
  explain(schema: unknown): { pointer: string; message: string } | undefined;
}

export function createCompilers(dialect: Dialect): Compilers {
  const base: Options = {
    allErrors: false,
    messages: false,
    ownProperties: true,
    validateFormats: true,
    unicodeRegExp: true,
    // Inline schemas are the operator's own: unknown keywords there are typos. OpenAPI files carry vendor
    // extensions (x-…) and annotations that ajv does not know.
    ...(dialect === 'inline' ? { strictSchema: true, strictTypes: false, strictTuples: false, strictRequired: false } : { strict: false }),
  };
  const make = (coerce: boolean) => {
    const opts: Options = { ...base, ...(coerce ? { coerceTypes: 'array' as const } : {}) };
    const ajv = dialect === 'openapi-3.0' ? new Ajv(opts) : new Ajv2020(opts);
    addFormats(ajv);
    if (dialect !== 'inline') for (const k of OPENAPI_KEYWORDS) ajv.addKeyword(k);
    return ajv;
  };
  const json = make(false);
  const text = make(true);
  return {
    json: (schema) => json.compile(schema as object),
    text: (schema) => text.compile(schema as object),
    explain(schema) {
      if (json.validateSchema(schema as object) !== false) return undefined;
      const e = json.errors?.[0];
      if (!e) return undefined;
      const params = Object.entries(e.params as Record<string, unknown>).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
      return { pointer: e.instancePath, message: `schema keyword ${e.keyword} fails${params.length ? ` (${params.join(', ')})` : ''}` };
    },
  };
}
