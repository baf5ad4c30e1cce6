// Starts a real Gateway on 127.0.0.1:0 from YAML text written to a temp dir; captures its JSON logs.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/audit/logger.ts';
import { Gateway } from '../../src/server/gateway.ts';

export interface TestGateway {
  gateway: Gateway;
  url: string;
  port: number;
  dir: string;
  configFile: string;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export function tempDir(prefix = 'ztgw-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function captureLogger() {
  const logs: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        raw.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { logger: createLogger('debug', stream), logs, raw };
}

export async function startGateway(
  yaml: string,
  opts: {
    files?: Record<string, string>;
    env?: NodeJS.ProcessEnv;
    watch?: boolean;
    dir?: string;
    /** The gateway's clock for cooldowns and TTLs (a testClock().now): advanced by the test instead of sleeping. */
    now?: () => number;
  } = {},
): Promise<TestGateway> {
  const dir = opts.dir ?? tempDir();
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content);
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, yaml);
  const { logger, logs } = captureLogger();
  const gateway = new Gateway({ configFile, env: opts.env ?? {}, logger, watch: opts.watch ?? false, ...(opts.now ? { now: opts.now } : {}) });
  await gateway.start();
  return {
    gateway,
    url: gateway.url,
    port: gateway.port,
    dir,
    configFile,
    logs,
    close: () => gateway.stop(),
  };
}

/** A minimal plaintext config with one public route to `upstream`. */
export function publicConfig(upstream: string, extra = ''): string {
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 2s }
${extra}
routes:
  - name: app
    match: { path: / }
    upstream: { url: ${upstream}, timeout: 2s, connect_timeout: 1s }
    public: true
`;
}
