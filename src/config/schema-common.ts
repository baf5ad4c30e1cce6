// Building blocks of the config schema shared by its parts (schema.ts, schema-route.ts, schema-providers.ts).
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration.ts';

export const duration = z
  .string()
  .regex(DURATION_PATTERN, 'expected a duration such as 250ms, 30s, 5m, 8h')
  .transform(parseDuration)
  .meta({ description: 'A duration: <number><ms|s|m|h|d>, e.g. 30s' });

export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+|\*):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:8443')
  .meta({ description: 'host:port to listen on; port 0 picks a free port' });

export const headerName = z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name');

export const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]);

/** A string with a field-level check: invisible in the JSON Schema, reported with the other schema errors. */
export const checked = (base: z.ZodString, problem: (value: string) => string | undefined) =>
  base.superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  });

export const str = z.string().min(1);
export const GRANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const riskThreshold = z.number().min(0).max(1);
