// A private redis-server for tests that stop it mid-test (never the shared one at 6379). With CI=true a
// missing redis-server or one that never answers fails the test; elsewhere the caller may skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { freePort, waitFor } from './wait.ts';

export const IN_CI = process.env.CI === 'true';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly process: ChildProcess;
  /** SIGTERM, then SIGKILL if it has not exited within 3 s. Resolves once the process is gone. */
  stop(): Promise<void>;
}

/** Whether `redis-server` can be run here. Under CI a missing binary throws instead of returning false. */
export function redisServerAvailable(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5000 });
  const ok = probe.error === undefined && probe.status === 0;
  if (!ok && IN_CI) {
    throw new Error(`CI=true but redis-server cannot run: ${probe.error?.message ?? `exit ${probe.status}`}`);
  }
  return ok;
}

/** Sends an inline PING; true when the answer is +PONG within `timeoutMs`. */
export function pingRedis(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

function spawnOn(port: number): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/**
 * Starts redis-server on `port` (a fresh free port when absent) and waits, bounded, until PING answers.
 * Throws when it cannot start: the test fails rather than passing without Redis.
 */
export async function startRedis(port?: number): Promise<RedisServer> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const p = port ?? (await freePort());
    const child = spawnOn(p);
    let exited = false;
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('exit', () => (exited = true));
    const spawnError = new Promise<Error>((r) => child.once('error', r));
    let failed: Error | undefined;
    void spawnError.then((e) => (failed = e));

    const answered = await waitFor(async () => (exited || failed !== undefined ? 'gone' : (await pingRedis(p, 200)) && 'ready'), {
      timeoutMs: 5000,
      intervalMs: 50,
      what: `redis-server on port ${p} to answer PING`,
    }).catch(() => 'timeout' as const);
    if (answered === 'ready') return handle(p, child);
    if (failed !== undefined) throw new Error(`redis-server could not be started: ${(failed as Error).message}`);
    if (!exited) child.kill('SIGKILL');
    lastError = exited ? `redis-server exited early on port ${p}: ${stderr.trim()}` : `redis-server on port ${p} did not answer PING within 5 s`;
    if (port !== undefined) break; // a fixed port: retrying with the same port would not help
  }
  throw new Error(lastError);
}

function handle(port: number, child: ChildProcess): RedisServer {
  const gone = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined);
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 3000)));
      if ((await Promise.race([gone, timeout])) === 'timeout') {
        child.kill('SIGKILL');
        await gone;
      }
      clearTimeout(timer);
    },
  };
}

/**
 * A Redis for one test file: its own redis-server when the binary exists, else the machine's on 6379; url is
 * undefined when neither is there (tests then skip), which CI=true refuses.
 */
export async function redisForTests(): Promise<{ url: string | undefined; server: RedisServer | undefined }> {
  let binary = false;
  try {
    binary = redisServerAvailable();
  } catch {
    binary = false;
  }
  if (binary) {
    const server = await startRedis();
    return { url: server.url, server };
  }
  if (await pingRedis(6379)) return { url: 'redis://127.0.0.1:6379/0', server: undefined };
  if (IN_CI) throw new Error('CI=true but no Redis: neither redis-server nor 127.0.0.1:6379');
  return { url: undefined, server: undefined };
}
