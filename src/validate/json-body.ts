// Small JSON request bodies (admin API, /.zt/grants): bounded, an object or nothing, never trusted further.
import type { IncomingMessage } from 'node:http';
import { GatewayError, readRequestBody } from '../core/index.ts';
import { parseJsonBody } from './json.ts';

export const MAX_JSON_BODY = 4096;

/** The parsed object, or undefined for an empty body. Too large, not JSON, or not an object: 400. */
export async function readJsonBody(req: IncomingMessage, limit = MAX_JSON_BODY): Promise<Record<string, unknown> | undefined> {
  const tooLarge = () => new GatewayError('GW_ERR_BAD_REQUEST', `the body may be at most ${limit} bytes`, { headers: [['connection', 'close']] });
  const bytes = await readRequestBody(req, limit, tooLarge);
  if (bytes.toString('utf8').trim() === '') return undefined;
  // The validator's scanner: duplicate keys (which JSON.parse would silently resolve) and deep nesting too.
  const parsed = parseJsonBody(bytes);
  if ('problem' in parsed) {
    throw new GatewayError('GW_ERR_BAD_REQUEST', parsed.problem === 'json' ? 'the body is not valid JSON' : `the JSON body is refused (${parsed.problem})`);
  }
  const value = parsed.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new GatewayError('GW_ERR_BAD_REQUEST', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** A printable single-line string of 1..max characters, or a 400 naming the field. */
export function textField(body: Record<string, unknown> | undefined, name: string, max: number, required: boolean): string | undefined {
  const v = body?.[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new GatewayError('GW_ERR_BAD_REQUEST', `"${name}" must be a string of 1 to ${max} printable characters`);
  }
  return v;
}
