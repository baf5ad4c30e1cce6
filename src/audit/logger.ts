// pino JSON logs with an async destination; secrets, tokens and cookies are redacted by path.
import pino, { type DestinationStream, type Logger } from 'pino';
import { batchedLines, flushAtExit } from './batch.ts';

export type { Logger } from 'pino';

// Exact paths only: records are built field by field by the gateway and never carry credentials; this is a
// guard against a future `log.info({ headers })`. Wildcard paths cost ~10% of the request path (profiled).
export const REDACT_PATHS = [
  'authorization', 'cookie', 'token', 'secret', 'password', 'client_secret',
  'headers.authorization', 'headers.cookie', 'headers["set-cookie"]', 'headers["proxy-authorization"]', 'headers["x-api-key"]',
  'err.config', 'err.headers',
];

export const SERVICE = 'zt-gateway';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  // Asynchronous writes, handed over once per event-loop turn (no timer: a quiet gateway still shows its
  // logs at once). The stdout decision records join this same batched stream, so lines keep their order.
  let dest = destination;
  if (dest === undefined) {
    const stdout = batchedLines(pino.destination({ dest: 1, sync: false }));
    flushAtExit(stdout);
    dest = stdout;
  }
  return pino(
    {
      level,
      base: { service: SERVICE },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}
