// One-time login handoff codes (login.host): 256 random bits, kept under their SHA-256 (the code itself is
// stored nowhere) for at most 30 s, taken once. Memory for one instance; Redis (SET PX, GETDEL: atomic, so a
// code raced to two instances is taken by one) when state.redis is set. Expiry is judged on the gateway's
// clock from the record itself as well, so a late code is refused even where the store has not dropped it.
import { hash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError } from '../../core/index.ts';

export const HANDOFF_TTL_MS = 30_000;
const PREFIX = 'ztgw:handoff:';
/** Codes kept in memory at most (a flood of logins never grows it past this; the oldest go first). */
const MAX_MEMORY_CODES = 100_000;

export interface HandoffCodes {
  /** Stores `record` and returns the new code for it. */
  mint(record: Record<string, unknown>): Promise<string>;
  /** The record, removed in the same step (a second take finds nothing); undefined when unknown or used. */
  take(code: string): Promise<Record<string, unknown> | undefined>;
}

const keyOf = (code: string): string => hash('sha256', code, 'base64url');
const unavailable = (err: unknown) => new GatewayError('GW_ERR_DEPENDENCY_UNAVAILABLE', 'the state store is unavailable', { cause: err });

/** `memory`: kept across reloads (RpState). `now`: the gateway's clock. */
export function createHandoffCodes(redis: Redis | null, memory: Map<string, { text: string; exp: number }>, now: () => number): HandoffCodes {
  return {
    async mint(record) {
      const code = randomBytes(32).toString('base64url');
      const exp = now() + HANDOFF_TTL_MS;
      const text = JSON.stringify({ ...record, exp });
      if (redis) {
        try {
          await redis.set(PREFIX + keyOf(code), text, 'PX', HANDOFF_TTL_MS);
        } catch (err) {
          throw unavailable(err);
        }
        return code;
      }
      const t = now();
      // Oldest first (every code lives as long): drop those well past expiry (kept a while so that a late code
      // says "expired"), stopping at the first still kept: a mint costs what it drops, never a scan.
      for (const [k, v] of memory) {
        if (v.exp + HANDOFF_TTL_MS >= t) break;
        memory.delete(k);
      }
      if (memory.size >= MAX_MEMORY_CODES) memory.delete(memory.keys().next().value as string);
      memory.set(keyOf(code), { text, exp });
      return code;
    },
    async take(code) {
      if (!/^[A-Za-z0-9_-]{43}$/.test(code)) return undefined;
      const key = keyOf(code);
      let text: string | null | undefined;
      if (redis) {
        try {
          text = await redis.getdel(PREFIX + key);
        } catch (err) {
          throw unavailable(err);
        }
      } else {
        text = memory.get(key)?.text;
        memory.delete(key);
      }
      if (text === null || text === undefined) return undefined;
      return JSON.parse(text) as Record<string, unknown>;
    },
  };
}
