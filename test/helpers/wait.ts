// The one set of waiting helpers for every test: bounded polling, a plain sleep, a free port, and a clock that
// tests advance instead of sleeping through cooldowns and TTLs.
import { once } from 'node:events';
import net from 'node:net';

export interface WaitOptions {
  /** Give up after this long (default 2000 ms). */
  timeoutMs?: number;
  /** Pause between checks (default 10 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout error. */
  what?: string;
}

/** A predicate's answer: `false`, `undefined` and `null` mean "not yet"; anything else is the result. */
type Pending = false | undefined | null;

/**
 * Polls `predicate` until it returns something other than false/undefined/null and returns that value.
 * Bounded: throws `waitFor: timed out after N ms waiting for <what>` when `timeoutMs` passes; an error the
 * predicate throws propagates at once.
 */
export async function waitFor<T>(predicate: () => T | Pending | Promise<T | Pending>, opts: WaitOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const intervalMs = opts.intervalMs ?? 10;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value !== false && value !== undefined && value !== null) return value;
    if (Date.now() >= deadline) {
      throw new Error(`waitFor: timed out after ${timeoutMs} ms waiting for ${opts.what ?? String(predicate)}`);
    }
    await sleep(intervalMs);
  }
}

/** A real-time pause: only for pacing (a client that is slow on purpose), never to let something happen. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A loopback port that was free a moment ago (the kernel picks it). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface TestClock {
  /** Pass as `now` to the component under test. */
  readonly now: () => number;
  /** Moves this clock forward (never back). */
  advance(ms: number): void;
}

/**
 * Real time plus an offset the test advances: monotonic, consistent with timestamps taken with Date.now()
 * elsewhere, and it does not touch timers (sockets, undici, ioredis and jose keep working).
 */
export function testClock(): TestClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms: number) {
      if (!(ms >= 0)) throw new RangeError(`testClock.advance: ${ms} is not a non-negative duration`);
      offset += ms;
    },
  };
}
