// Client spans for Redis commands made while serving a traced request (rate limits, sessions, risk
// profiles, …). ioredis has no command hook, so the shared client's sendCommand is wrapped once; the wrapper
// costs one boolean check per command while tracing is off, and opens no span outside a request (the access
// store's subscriber, background refreshes): those have no current trace. Keys and arguments are never
// recorded (they hold session ids and client addresses): only the command name.
import type { Redis } from 'ioredis';
import { currentTrace } from '../core/index.ts';

const kTracing = Symbol('zt.redisTracing');
type Traceable = Redis & { [kTracing]?: { on: boolean } };

/** Turns command spans on or off for `redis` (runtime: whether the config in force exports spans). */
export function traceRedisCommands(redis: Redis, on: boolean): void {
  const r = redis as Traceable;
  const existing = r[kTracing];
  if (existing !== undefined) {
    existing.on = on;
    return;
  }
  if (!on) return;
  const flag = { on };
  r[kTracing] = flag;
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    const trace = flag.on ? currentTrace() : undefined;
    if (trace === undefined) return send(command, stream);
    const span = trace.child(`redis ${command.name.toUpperCase()}`, { 'db.system.name': 'redis', 'db.operation.name': command.name.toUpperCase() });
    command.promise.then(
      () => span.end(),
      (err: unknown) => span.end(err instanceof Error ? err.name : 'error'),
    );
    return send(command, stream);
  };
}
