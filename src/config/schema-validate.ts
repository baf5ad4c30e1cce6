// The `validate:` block of a route (config contract): an OpenAPI file, or inline JSON Schemas.
import { z } from 'zod';

const SIZE = /^(\d{1,12})\s*(b|kb|mb)?$/i;
const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };

export const MAX_BODY_LIMIT = 64 * 1024 * 1024;

const size = z
  .union([z.number().int().min(1), z.string().regex(SIZE, 'a size such as 65536, 64kb or 1mb')])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = SIZE.exec(v) as RegExpExecArray;
    return Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] as number);
  })
  .refine((n) => n <= MAX_BODY_LIMIT, 'max_body may be at most 64mb')
  .meta({ description: 'Bytes (65536) or 64kb / 1mb' });

const jsonSchema = z.union([z.record(z.string(), z.unknown()), z.boolean()]).meta({ description: 'A JSON Schema (2020-12)' });

const mediaType = z
  .string()
  .regex(/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/, 'a media type such as application/json (no parameters)');

export const validateSchema = z
  .strictObject({
    openapi: z.string().min(1).optional().meta({ description: 'OpenAPI 3.0/3.1 file (relative to the config); operations by method and path under the route' }),
    query: jsonSchema.optional(),
    headers: jsonSchema.optional().meta({ description: 'Schema of the lower-case request headers (extra headers are allowed)' }),
    body: jsonSchema.optional().meta({ description: 'Schema of a JSON or form body' }),
    content_types: z.array(mediaType).min(1).optional().meta({
      description: 'Allowed body media types (default: application/json and application/x-www-form-urlencoded, or the operation\'s)',
    }),
    max_body: size.prefault(1024 * 1024),
  })
  .superRefine((v, ctx) => {
    if (v.openapi !== undefined && (v.query !== undefined || v.headers !== undefined || v.body !== undefined)) {
      ctx.addIssue({ code: 'custom', params: { code: 'CFG_CONFLICT' }, path: ['openapi'], message: 'use either openapi or inline query/headers/body schemas, not both' });
    }
  });

export type ValidateConfig = z.output<typeof validateSchema>;
