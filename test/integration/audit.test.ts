// The decision audit log: one JSON record per decision, checked field by field from the captured raw log
// lines; credentials, cookies and query strings never appear in any line; `log.audit: <file>` writes the
// records to that file instead of the main log.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/authn/api-key.ts';
import { createAuditLog } from '../../src/audit/audit.ts';
import { batchedLines } from '../../src/audit/batch.ts';
import { createLogger } from '../../src/audit/logger.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { captureLogger, tempDir } from '../helpers/gateway.ts';
import { signHs256 } from '../helpers/idp.ts';
import { rawRequest } from '../helpers/raw.ts';
import { listenHttp } from '../helpers/streams.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type Rec = Record<string, unknown>;

const secret = (label: string) => `${label}${randomBytes(18).toString('hex')}`;
const ALICE_KEY = secret('ztk_alice_');
const BOB_KEY = secret('ztk_bob_');
const WRONG_KEY = secret('ztk_wrong_');
const JWT_SECRET = secret('jwtsecret_');
const COOKIE = secret('cookie');
const QUERY = secret('query');
const PROXY_AUTH = secret('proxyauth');
const ISSUER = 'https://idp.audit.test';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const KEYS_YAML = `keys:
  - { id: alice, hash: ${hashKey(ALICE_KEY)}, subject: alice, groups: [sales] }
  - { id: bob, hash: ${hashKey(BOB_KEY)}, subject: bob, groups: [eng] }
`;

function config(up: string, down: string, extra = ''): string {
  const upstream = `upstream: { url: ${up}, timeout: 2s, connect_timeout: 1s }`;
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
trusted_proxies: [127.0.0.1/32]
identity_headers: { assertion: false }
${extra}
identity_providers:
  keys: { type: api_key, keys_file: keys.yaml, header: X-Api-Key }
  corp: { type: jwt, issuer: ${ISSUER}, audiences: [gw], algorithms: [HS256], secret: "\${env:JWT_SECRET}" }
routes:
  - name: accounts
    match: { host: crm.example.com, path: /api }
    ${upstream}
    authenticate: [keys, corp]
    authorize:
      allow: [{ name: sales, groups: sales }]
  - name: legacy
    match: { host: crm.example.com, path: /legacy }
    ${upstream}
    authenticate: [keys]
    mode: report-only
    authorize:
      allow: [{ name: admins, groups: admins }]
  - name: assets
    match: { path: /static }
    ${upstream}
    public: true
  - name: down
    match: { path: /down }
    upstream: { url: ${down}, timeout: 1s, connect_timeout: 500ms }
    public: true
`;
}

interface Started {
  gateway: Gateway;
  url: string;
  port: number;
  dir: string;
  logs: Rec[];
  raw: string[];
}

/** Like startGateway, but keeps the raw log lines as written. */
async function start(yaml: string): Promise<Started> {
  const dir = tempDir('ztgw-audit-');
  writeFileSync(join(dir, 'keys.yaml'), KEYS_YAML);
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, yaml.replaceAll('@DIR@', dir));
  const { logger, logs, raw } = captureLogger();
  const gateway = new Gateway({ configFile, env: { JWT_SECRET }, logger, watch: false });
  await gateway.start();
  return { gateway, url: gateway.url, port: gateway.port, dir, logs, raw };
}

const jwt = (sub: string, groups: string[], key = JWT_SECRET) => signHs256(key, ISSUER, sub, { groups });

let upstream: Upstream;
let downUrl: string;
let gw: Started;
let BOB_TOKEN: string;
let FORGED_TOKEN: string;
/** Every credential or query value sent in this file: none may appear in any log line. */
let SECRETS: string[];

beforeAll(async () => {
  upstream = await startUpstream();
  const closed = await listenHttp(() => undefined);
  downUrl = closed.url;
  await closed.close();
  BOB_TOKEN = await jwt('bob', ['eng']);
  FORGED_TOKEN = await jwt('alice', ['sales'], secret('wrong-secret-of-enough-length-'));
  SECRETS = [ALICE_KEY, BOB_KEY, WRONG_KEY, JWT_SECRET, COOKIE, QUERY, PROXY_AUTH, BOB_TOKEN, FORGED_TOKEN];
  for (const token of [BOB_TOKEN, FORGED_TOKEN]) SECRETS.push(token.split('.')[2] as string);
  gw = await start(config(upstream.url, downUrl));
});
afterAll(async () => {
  await gw?.gateway.stop();
  await upstream?.close();
});

interface Result {
  status: number;
  id: string;
  record: Rec;
}

const decisions = (logs: Rec[], id?: string) => logs.filter((l) => l.audit === true && l.msg === 'decision' && (id === undefined || l.request_id === id));

async function call(
  path: string,
  opts: { method?: string; headers?: Record<string, string>; on?: Started } = {},
): Promise<Result> {
  const target = opts.on ?? gw;
  const res = await request(`${target.url}${path}`, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: { host: 'crm.example.com', cookie: `sid=${COOKIE}; theme=dark`, 'proxy-authorization': `Basic ${PROXY_AUTH}`, ...opts.headers },
  });
  await res.body.text();
  const id = res.headers['x-request-id'] as string;
  expect(id).toMatch(UUID);
  if (target.logs === gw.logs) {
    await waitFor(() => decisions(target.logs, id).length > 0);
    const found = decisions(target.logs, id);
    expect(found).toHaveLength(1); // one record per decision
    return { status: res.statusCode, id, record: found[0] as Rec };
  }
  return { status: res.statusCode, id, record: {} };
}

const base = { level: 'info', time: expect.stringMatching(ISO), service: 'zt-gateway', audit: true, msg: 'decision' };

describe('decision records, field by field', () => {
  it('allow (API key): canonical path without the query, client IP from the trusted proxy', async () => {
    const r = await call(`/api/%61ccounts/7?access_token=${QUERY}&page=2`, {
      headers: { authorization: `ApiKey ${ALICE_KEY}`, 'x-forwarded-for': '198.51.100.23' },
    });
    expect(r.status).toBe(200);
    expect(r.record).toEqual({
      ...base,
      request_id: r.id,
      decision: 'allow',
      route: 'accounts',
      method: 'GET',
      host: 'crm.example.com',
      path: '/api/accounts/7',
      client_ip: '198.51.100.23',
      subject: 'alice',
      auth_method: 'api_key',
      provider: 'keys',
      rule: 'sales',
      reasons: [{ rule: 'sales', reason: 'rule-matched' }],
      mode: 'enforce',
      status: 200,
    });
  });

  it('deny (JWT bearer): no rule, the reasons of each failed allow rule, status and code', async () => {
    const r = await call(`/api/accounts?token=${QUERY}`, { method: 'POST', headers: { authorization: `Bearer ${BOB_TOKEN}` } });
    expect(r.status).toBe(403);
    expect(r.record).toEqual({
      ...base,
      request_id: r.id,
      decision: 'deny',
      route: 'accounts',
      method: 'POST',
      host: 'crm.example.com',
      path: '/api/accounts',
      client_ip: '127.0.0.1',
      subject: 'bob',
      auth_method: 'jwt',
      provider: 'corp',
      reasons: [{ rule: 'sales', reason: 'groups-unauthorized' }],
      mode: 'enforce',
      status: 403,
      code: 'GW_ERR_FORBIDDEN',
    });
  });

  it('would_deny on a report-only route: forwarded, status 200, reasons kept', async () => {
    const r = await call('/legacy/report;jsessionid=1', { headers: { 'x-api-key': BOB_KEY } });
    expect(r.status).toBe(200);
    expect(r.record).toEqual({
      ...base,
      request_id: r.id,
      decision: 'would_deny',
      route: 'legacy',
      method: 'GET',
      host: 'crm.example.com',
      path: '/legacy/report;jsessionid=1',
      client_ip: '127.0.0.1',
      subject: 'bob',
      auth_method: 'api_key',
      provider: 'keys',
      reasons: [{ rule: 'admins', reason: 'groups-unauthorized' }],
      mode: 'report-only',
      status: 200,
    });
  });

  // Header builders: the tokens are signed in beforeAll, after this table is built.
  it.each<[string, () => Record<string, string>]>([
    ['a forged JWT', () => ({ authorization: `Bearer ${FORGED_TOKEN}` })],
    ['a wrong API key', () => ({ authorization: `ApiKey ${WRONG_KEY}` })],
    ['a wrong key in the key header', () => ({ 'x-api-key': WRONG_KEY })],
    ['no credentials', () => ({})],
  ])('unauthenticated (%s): no identity, no policy result', async (_name, headers) => {
    const r = await call(`/api/accounts?key=${QUERY}`, { headers: headers() });
    expect(r.status).toBe(401);
    expect(r.record).toEqual({
      ...base,
      request_id: r.id,
      decision: 'unauthenticated',
      route: 'accounts',
      method: 'GET',
      host: 'crm.example.com',
      path: '/api/accounts',
      client_ip: '127.0.0.1',
      mode: 'enforce',
      status: 401,
      code: 'GW_ERR_UNAUTHENTICATED',
    });
  });

  it('public route: audited as public, without identity even when credentials are sent', async () => {
    const r = await call(`/static/app.js?sig=${QUERY}`, { headers: { host: 'static.example.com', authorization: `ApiKey ${ALICE_KEY}` } });
    expect(r.status).toBe(200);
    expect(r.record).toEqual({
      ...base,
      request_id: r.id,
      decision: 'public',
      route: 'assets',
      method: 'GET',
      host: 'static.example.com',
      path: '/static/app.js',
      client_ip: '127.0.0.1',
      mode: 'enforce',
      status: 200,
    });
  });

  it('upstream down: the decision and the 502 with its code', async () => {
    const r = await call(`/down/x?token=${QUERY}`);
    expect(r.status).toBe(502);
    expect(r.record).toMatchObject({ request_id: r.id, decision: 'public', route: 'down', path: '/down/x', status: 502, code: 'GW_ERR_UPSTREAM_UNAVAILABLE' });
  });

  it('no route: 404 audited as no_route', async () => {
    const r = await call(`/nothing/here?x=${QUERY}`, { headers: { authorization: `ApiKey ${ALICE_KEY}` } });
    expect(r.status).toBe(404);
    expect(r.record).toEqual({
      ...base,
      request_id: r.id,
      decision: 'no_route',
      method: 'GET',
      host: 'crm.example.com',
      path: '/nothing/here',
      client_ip: '127.0.0.1',
      status: 404,
      code: 'GW_ERR_NO_ROUTE',
    });
  });

  it('a refused request (bad path) is audited as refused with its status and code', async () => {
    const before = decisions(gw.logs).length;
    const res = await rawRequest(gw.port, `GET /api/..%2fadmin?token=${QUERY} HTTP/1.1\r\nHost: crm.example.com\r\nAuthorization: ApiKey ${ALICE_KEY}\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(400);
    await waitFor(() => decisions(gw.logs).length > before);
    const record = decisions(gw.logs).at(-1) as Rec;
    expect(record).toMatchObject({ ...base, decision: 'refused', status: 400, code: 'GW_ERR_BAD_PATH' });
  });

  it('a refused request carries the request id of its response', async () => {
    const before = decisions(gw.logs).length;
    const res = await rawRequest(gw.port, 'GET /a/../b HTTP/1.1\r\nHost: crm.example.com\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(400);
    await waitFor(() => decisions(gw.logs).length > before);
    expect((decisions(gw.logs).at(-1) as Rec).request_id).toBe(res.headers['x-request-id']);
  });

  it('never writes credentials, cookies, bearer tokens or query strings to any log line', () => {
    expect(gw.raw.length).toBeGreaterThan(10);
    expect(decisions(gw.logs).length).toBeGreaterThanOrEqual(10);
    for (const line of gw.raw) {
      for (const s of SECRETS) expect(line, 'a secret in a log line').not.toContain(s);
      expect(line).not.toMatch(/access_token=|[?&](token|key|sig|x)=/);
      expect(line).not.toMatch(/ApiKey |Bearer ey|sid=/);
    }
    // The access log line is there too, with the same canonical path and no query.
    const access = gw.logs.filter((l) => l.msg === 'request');
    expect(access.length).toBeGreaterThan(0);
    for (const l of access) expect(String(l.path ?? '')).not.toContain('?');
  });
});

describe('log.audit: a file', () => {
  let fileGw: Started;
  let file: string;
  beforeAll(async () => {
    fileGw = await start(config(upstream.url, downUrl, 'log: { audit: "@DIR@/audit/decisions.log" }'));
    file = join(fileGw.dir, 'audit', 'decisions.log');
  });
  afterAll(async () => {
    await fileGw?.gateway.stop();
  });

  async function readRecords(count: number): Promise<Rec[]> {
    const read = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
    const lines = await waitFor(() => {
      const now = read();
      return now.length >= count && now;
    }, { timeoutMs: 3000, intervalMs: 20, what: `${count} records in the audit file` });
    for (const line of lines) for (const s of SECRETS) expect(line).not.toContain(s);
    return lines.map((l) => JSON.parse(l) as Rec);
  }

  it('writes the decision records to the file, not to the main log', async () => {
    const allow = await call(`/api/a?token=${QUERY}`, { on: fileGw, headers: { authorization: `ApiKey ${ALICE_KEY}` } });
    const deny = await call('/api/a', { on: fileGw, headers: { authorization: `Bearer ${BOB_TOKEN}` } });
    const unauth = await call('/api/a', { on: fileGw });
    expect([allow.status, deny.status, unauth.status]).toEqual([200, 403, 401]);

    const records = await readRecords(3);
    expect(records).toHaveLength(3);
    const byId = new Map(records.map((r) => [r.request_id, r]));
    expect(byId.get(allow.id)).toEqual({
      ...base,
      request_id: allow.id,
      decision: 'allow',
      route: 'accounts',
      method: 'GET',
      host: 'crm.example.com',
      path: '/api/a',
      client_ip: '127.0.0.1',
      subject: 'alice',
      auth_method: 'api_key',
      provider: 'keys',
      rule: 'sales',
      reasons: [{ rule: 'sales', reason: 'rule-matched' }],
      mode: 'enforce',
      status: 200,
    });
    expect(byId.get(deny.id)).toMatchObject({ decision: 'deny', subject: 'bob', auth_method: 'jwt', status: 403, code: 'GW_ERR_FORBIDDEN' });
    expect(byId.get(unauth.id)).toMatchObject({ decision: 'unauthenticated', status: 401, code: 'GW_ERR_UNAUTHENTICATED' });

    // The main log keeps the access lines but gets no decision records.
    await waitFor(() => fileGw.logs.filter((l) => l.msg === 'request').length >= 3);
    expect(decisions(fileGw.logs)).toEqual([]);
    expect(fileGw.logs.filter((l) => l.audit === true)).toEqual([]);
    for (const line of fileGw.raw) for (const s of SECRETS) expect(line).not.toContain(s);
  });
});

describe('audit records and log.level', () => {
  it('are written even when the main log level would drop info lines', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const main = createLogger('warn', sink);
    const audit = createAuditLog('stdout', main);
    main.info('an info line the level drops');
    audit.record(undefined, 400, 'GW_ERR_BAD_PATH');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ audit: true, msg: 'decision', decision: 'refused', status: 400, code: 'GW_ERR_BAD_PATH' });
  });

  it('keep their place among the main log lines on stdout, and carry its bindings (worker, pid)', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const main = createLogger('info', sink);
    main.setBindings({ worker: 2, pid: 4242 });
    const audit = createAuditLog('stdout', main);
    main.info('before');
    audit.record(undefined, 429, 'GW_ERR_RATE_LIMITED');
    main.info('after');
    const recs = lines.join('').trim().split('\n').map((l) => JSON.parse(l) as Rec);
    expect(recs.map((r) => r.msg)).toEqual(['before', 'decision', 'after']);
    expect(recs[1]).toMatchObject({ service: 'zt-gateway', worker: 2, pid: 4242, audit: true, decision: 'rate_limited', status: 429 });
  });
});

describe('batched lines', () => {
  it('hand one event-loop turn of lines to the destination as one write, in order', async () => {
    const writes: string[] = [];
    const batch = batchedLines({ write: (d: string) => writes.push(d) });
    for (let i = 0; i < 50; i++) batch.write(`${i}\n`);
    expect(writes).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([Array.from({ length: 50 }, (_, i) => `${i}\n`).join('')]);
    batch.write('x\n');
    batch.flushSync();
    expect(writes).toHaveLength(2);
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(2);
  });
});

describe('decision lines with hostile caller fields', () => {
  it('stay one valid JSON object: no repeated keys, nested credentials redacted, unserializable values marked', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const audit = createAuditLog('stdout', createLogger('info', sink));
    const cyclic: Rec = {};
    cyclic.self = cyclic;
    audit.record(undefined, 200, undefined, {
      decision: 'admin',
      level: 'fatal',
      time: 'forged',
      audit: false,
      service: 'other',
      headers: { Authorization: 'Bearer SECRET-1', cookie: 'sid=SECRET-2', accept: '*/*' },
      err: { config: { headers: { 'x-api-key': 'SECRET-3' } } },
      big: 10n,
      cyclic,
    });
    const line = lines.join('');
    expect(line).not.toMatch(/SECRET-/);
    for (const key of ['decision', 'level', 'time', 'audit', 'service']) expect(line.match(new RegExp(`"${key}":`, 'g'))).toHaveLength(1);
    const rec = JSON.parse(line) as Rec;
    expect(rec).toMatchObject({ level: 'info', audit: true, service: 'zt-gateway', decision: 'admin', big: '[unserializable]', cyclic: '[unserializable]' });
    expect(rec.time).toMatch(ISO);
    expect(rec.headers).toEqual({ Authorization: '[redacted]', cookie: '[redacted]', accept: '*/*' });
    expect(rec.err).toEqual({ config: { headers: { 'x-api-key': '[redacted]' } } });
  });
});

describe('audit records at exit', () => {
  it('are on disk when the process exits in the same event-loop turn that recorded them', () => {
    const dir = tempDir();
    const file = join(dir, 'exit-audit.log');
    const script = `
      import { createAuditLog } from ${JSON.stringify(new URL('../../src/audit/audit.ts', import.meta.url).href)};
      import { createLogger } from ${JSON.stringify(new URL('../../src/audit/logger.ts', import.meta.url).href)};
      const audit = createAuditLog(${JSON.stringify(file)}, createLogger('warn'));
      for (let i = 0; i < 3; i++) audit.record(undefined, 400 + i, 'GW_ERR_BAD_PATH');
      process.exit(0);
    `;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(out.status).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
    expect(lines.map((l) => l.status)).toEqual([400, 401, 402]);
  });

  it('on stdout (the default) are written, in order with the main log, when the process exits in the same turn', () => {
    const script = `
      import { createAuditLog } from ${JSON.stringify(new URL('../../src/audit/audit.ts', import.meta.url).href)};
      import { createLogger } from ${JSON.stringify(new URL('../../src/audit/logger.ts', import.meta.url).href)};
      const main = createLogger('info');
      const audit = createAuditLog('stdout', main);
      main.info('first');
      for (let i = 0; i < 3; i++) audit.record(undefined, 400 + i, 'GW_ERR_BAD_PATH');
      main.info('last');
      process.exit(0);
    `;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(out.status).toBe(0);
    const recs = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as Rec);
    expect(recs.map((r) => r.msg)).toEqual(['first', 'decision', 'decision', 'decision', 'last']);
    expect(recs.filter((r) => r.msg === 'decision').map((r) => r.status)).toEqual([400, 401, 402]);
  });

  it('share one exit listener however many audit files a process opens and closes', () => {
    const dir = tempDir();
    createAuditLog(join(dir, 'first.log'), createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }))).close();
    const before = process.listenerCount('exit');
    const logs = Array.from({ length: 20 }, (_, i) => createAuditLog(join(dir, `many-${i}.log`), createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }))));
    expect(process.listenerCount('exit')).toBe(before);
    for (const l of logs) l.close();
    expect(process.listenerCount('exit')).toBe(before);
  });
});
