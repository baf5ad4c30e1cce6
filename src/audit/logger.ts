// pino JSON logs with an async destination; secrets, tokens and cookies are redacted by path.
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const REDACT_PATHS = [
  'authorization', 'cookie', 'set-cookie', 'token', 'secret', 'password', 'client_secret',
  '*.authorization', '*.cookie', '*.set-cookie', '*.token', '*.secret', '*.password', '*.client_secret',
  'headers.authorization', 'headers.cookie', 'headers["set-cookie"]', 'headers["proxy-authorization"]',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  // Asynchronous writes, but no minimum batch: a quiet gateway must still show its logs at once.
  const dest = destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level,
      base: { service: 'zt-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}
