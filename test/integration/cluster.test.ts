// `zt-gateway start --workers 2` as a real process tree (node:cluster): two workers share one Redis rate
// limit (a route limit of N allows exactly N across many connections served by both workers), the primary's
// admin listener aggregates their metrics, restarts a killed worker, forwards SIGHUP, and drains on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { main } from '../../src/cli/main.ts';
import { bin, ensureBuilt, root } from '../helpers/build.ts';
import { tempDir } from '../helpers/gateway.ts';
import { scrape } from '../helpers/metrics.ts';
import { IN_CI, redisServerAvailable, startRedis, type RedisServer } from '../helpers/redis.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { freePort, sleep, waitFor } from '../helpers/wait.ts';

const available = redisServerAvailable(); // throws under CI=true when redis-server is missing
if (!available && !IN_CI) console.warn('cluster.test.ts: redis-server is not installed here; skipping');

const LIMIT = 10;
const ADMIN_TOKEN = 'cluster-admin-token-0123456789abcdef';
const ADMIN_TOKEN_HASH = createHash('sha256').update(ADMIN_TOKEN).digest('hex');
const REQUESTS = 30;
const packageVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

let redis: RedisServer;
let upstream: Upstream;
let primary: ChildProcess;
let port: number;
let admin: string;
const logs: Array<Record<string, unknown>> = [];

const until = <T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> =>
  waitFor(check, { what, timeoutMs, intervalMs: 100 });

async function readyWorkers(): Promise<number | undefined> {
  try {
    const res = await request(`${admin}/readyz`);
    const body = (await res.body.json()) as { workers?: { ready: number } };
    return body.workers?.ready;
  } catch {
    return undefined;
  }
}

const started = () => logs.filter((l) => l.msg === 'zt-gateway started');

describe.skipIf(!available)('cluster: start --workers 2', () => {
  beforeAll(async () => {
    ensureBuilt();
    redis = await startRedis();
    upstream = await startUpstream();
    port = await freePort();
    const adminPort = await freePort();
    admin = `http://127.0.0.1:${adminPort}`;
    const dir = tempDir();
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      `listen: { address: 127.0.0.1:${port}, plaintext: true }
admin: { listen: 127.0.0.1:${adminPort}, token_hash: "${ADMIN_TOKEN_HASH}" }
state: { redis: "${redis.url}" }
shutdown: { drain_timeout: 1s }
reload: { watch: false }
routes:
  - name: shared
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
    rate_limit: { per: route, limit: ${LIMIT}, window: 1m }
`,
    );
    primary = spawn(process.execPath, [bin, 'start', '--config', config, '--workers', '2'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    primary.stdout?.on('data', (c: Buffer) => {
      buffer += c.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    primary.stderr?.on('data', (c: Buffer) => process.stderr.write(c));
    await until('two ready workers', async () => ((await readyWorkers()) === 2 ? true : undefined));
  }, 60_000);

  afterAll(async () => {
    if (primary && primary.exitCode === null && primary.signalCode === null) {
      primary.kill('SIGKILL');
      await once(primary, 'exit');
    }
    for (const l of started()) {
      try {
        process.kill(l.pid as number, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await upstream?.close();
    await redis?.stop();
  });

  it('shares one Redis route limit: exactly N allowed across many connections and both workers', async () => {
    const statuses: number[] = [];
    for (let batch = 0; batch < REQUESTS / 10; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          // A new connection each: the primary hands connections to the workers in turn.
          const res = await request(`http://127.0.0.1:${port}/r/${batch}/${i}`, { headers: { connection: 'close' } });
          await res.body.dump();
          return res.statusCode;
        }),
      );
      statuses.push(...answers);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(REQUESTS - LIMIT);
    expect(upstream.received).toHaveLength(LIMIT);
    const served = await until('access logs', () => {
      const r = logs.filter((l) => l.msg === 'request' && String(l.path).startsWith('/r/'));
      return r.length === REQUESTS ? r : undefined;
    });
    expect(new Set(served.map((l) => l.worker)).size).toBe(2);
  });

  it('aggregates the workers metrics on the primary admin listener, for the admin token only', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }]) {
      const refused = await request(`${admin}/metrics`, { headers });
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Bearer realm="zt-gateway-admin"');
      expect(await refused.body.text()).not.toContain('zt_requests_total');
    }
    const m = await scrape(admin, ADMIN_TOKEN);
    expect(m.value('zt_requests_total', { route: 'shared', status: '200' })).toBe(LIMIT);
    expect(m.value('zt_requests_total', { route: 'shared', status: '429' })).toBe(REQUESTS - LIMIT);
    expect(m.value('zt_ratelimit_rejections_total', { limit: 'route' })).toBe(REQUESTS - LIMIT);
    expect(m.value('zt_decisions_total', { route: 'shared', decision: 'public', reason: 'public-route' })).toBe(LIMIT);
    expect(m.value('zt_redis_up')).toBe(1);
    expect(m.value('zt_upstream_duration_seconds_count', { route: 'shared' })).toBe(LIMIT);
    // The request histogram sums the workers' cells like any counter.
    const hist = (code: string) => ({ http_route: 'shared', http_request_method: 'GET', http_response_status_code: code });
    expect(m.value('http_server_request_duration_seconds_count', hist('200'))).toBe(LIMIT);
    expect(m.value('http_server_request_duration_seconds_count', hist('429'))).toBe(REQUESTS - LIMIT);
    expect(m.value('http_server_request_duration_seconds_bucket', { ...hist('429'), le: '+Inf' })).toBe(REQUESTS - LIMIT);
    expect(m.samples('http_server_request_duration_seconds_bucket').filter((s) => s.labels.http_response_status_code === '200')).toHaveLength(15);
  });

  it('aggregates the workers runtime metrics with prom-client aggregators, and zt_build_info as max', async () => {
    const m = await scrape(admin, ADMIN_TOKEN);
    // One build in every worker: one sample, 1 (not 2), naming the build-info file of dist/.
    const { commit } = JSON.parse(readFileSync(join(root, 'dist', 'build-info.json'), 'utf8')) as { commit: string };
    expect(m.samples('zt_build_info')).toEqual([{ labels: { version: packageVersion, commit, node: process.version }, value: 1 }]);
    for (const msg of ['zt-gateway primary started', 'zt-gateway started']) {
      expect(logs.find((l) => l.msg === msg)).toMatchObject({ version: packageVersion, commit, node: process.version });
    }
    // Sums: the node's total heap and resident memory, one sample each.
    expect(m.samples('nodejs_heap_size_used_bytes')).toHaveLength(1);
    expect(m.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    // Averages (and min/max) for the event-loop lag; the start time has no meaningful aggregate and is left out.
    expect(m.value('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    // prom-client reads a fresh event-loop histogram per scrape: with no sample yet its min is the histogram's
    // empty value (2^63 ns) and its max 0, so min <= max holds only once a sample exists.
    const lagMin = m.value('nodejs_eventloop_lag_min_seconds') as number;
    const lagMax = m.value('nodejs_eventloop_lag_max_seconds') as number;
    expect(lagMax).toBeGreaterThanOrEqual(0);
    if (lagMax > 0) expect(lagMax).toBeGreaterThanOrEqual(lagMin);
    else expect(lagMin === 0 || lagMin >= 9e9).toBe(true);
    expect(m.text).not.toContain('process_start_time_seconds');
    expect(m.samples('nodejs_version_info')).toEqual([expect.objectContaining({ value: 1 })]);
  });

  it('every worker signs with the same generated assertion key (one JWKS)', async () => {
    const bodies = new Set<string>();
    const workers = new Set<unknown>();
    for (let i = 0; i < 8; i++) {
      const res = await request(`http://127.0.0.1:${port}/.well-known/zt-gateway/jwks.json`, { headers: { connection: 'close' } });
      expect(res.statusCode).toBe(200);
      bodies.add(await res.body.text());
    }
    await until('access logs of the JWKS requests', () => {
      const r = logs.filter((l) => l.msg === 'request' && l.path === '/.well-known/zt-gateway/jwks.json');
      return r.length === 8 ? r : undefined;
    }).then((r) => r.forEach((l) => workers.add(l.worker)));
    expect(workers.size).toBe(2);
    expect(bodies.size).toBe(1);
    expect(JSON.parse([...bodies][0] as string).keys).toHaveLength(1);
  });

  it('every worker issues the same CSP report token, and accepts reports for it (no session.secret: the primary key)', async () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const res = await request(`http://127.0.0.1:${port}/csp-token-${i}`, { headers: { connection: 'close' } });
      await res.body.dump(); // 200 or 429 (the route's shared limit): both carry the route's policy
      const m = /report-uri \/\.zt\/csp-report\/([A-Za-z0-9_-]{22});/.exec(String(res.headers['content-security-policy-report-only']));
      tokens.add(m?.[1] ?? 'none');
    }
    const workers = new Set<unknown>();
    await until('access logs of the token requests', () => {
      const r = logs.filter((l) => l.msg === 'request' && String(l.path).startsWith('/csp-token-'));
      return r.length === 8 ? r : undefined;
    }).then((r) => r.forEach((l) => workers.add(l.worker)));
    expect(workers.size).toBe(2);
    expect(tokens.size).toBe(1);
    expect([...tokens][0]).not.toBe('none');
    const body = JSON.stringify({ 'csp-report': { 'effective-directive': 'img-src', 'blocked-uri': 'https://x.example/a.png', 'document-uri': 'http://h/' } });
    for (let i = 0; i < 6; i++) {
      const res = await request(`http://127.0.0.1:${port}/.zt/csp-report/${[...tokens][0]}`, { method: 'POST', headers: { connection: 'close', 'content-type': 'application/csp-report' }, body });
      await res.body.dump();
      expect(res.statusCode).toBe(204);
    }
  });

  it('forwards SIGHUP: every worker reloads', async () => {
    const before = logs.filter((l) => l.msg === 'config reloaded').length;
    primary.kill('SIGHUP');
    const reloaded = await until('two reloads', () => {
      const r = logs.filter((l) => l.msg === 'config reloaded').slice(before);
      return r.length === 2 ? r : undefined;
    });
    expect(new Set(reloaded.map((l) => l.worker)).size).toBe(2);
    const ready = await until('generation 2 on /readyz', async () => {
      const body = (await (await request(`${admin}/readyz`)).body.json()) as { config_generation: number; workers: object };
      return body.config_generation === 2 ? body : undefined;
    });
    expect(ready).toEqual({ status: 'ready', version: packageVersion, config_generation: 2, workers: { ready: 2, total: 2 } });
  });

  it('restarts a worker that dies', async () => {
    const victim = started()[0]?.pid as number;
    expect(typeof victim).toBe('number');
    process.kill(victim, 'SIGKILL');
    const replacement = await until('a replacement worker', () => started()[2]);
    expect(replacement.pid).not.toBe(victim);
    expect(logs.some((l) => l.msg === 'worker exited; restarting it' && l.pid === victim && l.signal === 'SIGKILL')).toBe(true);
    await until('two ready workers again', async () => ((await readyWorkers()) === 2 ? true : undefined));
    const res = await request(`http://127.0.0.1:${port}/after-restart`, { headers: { connection: 'close' } });
    await res.body.dump();
    expect(res.statusCode).toBe(429); // the shared limit is still used up: it lives in Redis, not in the worker
  });

  it('drains every worker and exits 0 on SIGTERM', async () => {
    const pids = started().map((l) => l.pid as number);
    primary.kill('SIGTERM');
    const [code] = (await Promise.race([once(primary, 'exit'), sleep(15_000).then(() => ['timeout'])])) as [number | string];
    expect(code).toBe(0);
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
    expect(logs.filter((l) => l.msg === 'zt-gateway stopped' && l.worker !== undefined)).toHaveLength(2);
  });
});

describe('start --workers: usage', () => {
  it('refuses a worker count that is not auto or 1..256 (exit 2)', async () => {
    const err: string[] = [];
    const io = { out: () => undefined, err: (l: string) => err.push(l) };
    for (const bad of ['0', '-1', 'two', '257', '1.5']) {
      expect(await main(['start', '--config', 'nowhere.yaml', '--workers', bad], io)).toBe(2);
    }
    expect(err.some((l) => l.includes('--workers must be auto or a number from 1 to 256'))).toBe(true);
  });

  it('refuses several workers with OIDC sessions but no Redis (a logout would reach one worker only)', async () => {
    const dir = tempDir();
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      `listen: { address: 127.0.0.1:0, plaintext: true }
identity_providers:
  corp: { type: oidc, issuer: "https://idp.example.com", client_id: gw, client_secret: "0123456789abcdef0123456789abcdef" }
session: { secret: "0123456789abcdef0123456789abcdef-session" }
routes:
  - name: app
    match: { path: / }
    upstream: { url: "http://127.0.0.1:1" }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`,
    );
    const err: string[] = [];
    expect(await main(['start', '--config', file, '--workers', '2'], { out: () => undefined, err: (l) => err.push(l) })).toBe(1);
    expect(err).toEqual(['zt-gateway: --workers with oidc providers needs state.redis (or state.sentinel): a logout must end the session in every worker']);
  });

  it('refuses several workers with admin.tls or a hash-chained audit file (both single-process today)', async () => {
    const dir = tempDir();
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      `listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0, tls: { cert: admin.crt, key: admin.key } }
log: { audit: audit.log, audit_chain: true }
routes:
  - { name: app, match: { path: / }, upstream: { url: "http://127.0.0.1:1" }, public: true }
`,
    );
    const err: string[] = [];
    expect(await main(['start', '--config', file, '--workers', '2'], { out: () => undefined, err: (l) => err.push(l) })).toBe(1);
    expect(err).toEqual([
      'zt-gateway: --workers does not serve admin.tls or the admin API yet: run one process per instance (scale with replicas) or drop admin.tls',
      'zt-gateway: --workers cannot write one hash-chained audit file (log.audit_chain): run one process per instance',
    ]);
  });
});
