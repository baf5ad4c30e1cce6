// node bench/cpu-cost.js --baseline DIR [--rounds 5] [--requests 20000] [--messages 20000]
// The gateway's own CPU time per request (full pipeline: HS256 JWT, rate limit, five allow rules, audit to a
// file) and per WebSocket echo message, this build against an earlier built checkout, in alternate rounds.
// CPU time (utime + stime of the gateway process, /proc/PID/stat) is what a change adds to each request;
// unlike req/s it barely moves when other processes load the machine, so it still compares two builds on a
// busy shared host where throughput rounds spread by ±50%. Needs `npm run build` in both trees (Linux only).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { once } from 'node:events';
import { Pool } from 'undici';
import { SignJWT } from 'jose';
import WebSocket, { WebSocketServer } from 'ws';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '20000' },
    messages: { type: 'string', default: '20000' },
  },
});
if (!opts.baseline) throw new Error('--baseline DIR (a built checkout of the earlier version) is required');
const rounds = Number(opts.rounds);
const requests = Number(opts.requests);
const messages = Number(opts.messages);
const TICK_US = 1e6 / 100; // USER_HZ

const SECRET = 'cpu-cost-bench-secret-0123456789abcdef0123456789';
const work = mkdtempSync(join(tmpdir(), 'zt-cpu-'));

const upstream = http.createServer((_req, res) => res.end('ok'));
const wss = new WebSocketServer({ server: upstream });
wss.on('connection', (ws) => ws.on('message', (m) => ws.send(m)));
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;

const token = await new SignJWT({ groups: ['sales'], email: 'alice@example.com' })
  .setProtectedHeader({ alg: 'HS256' })
  .setIssuer('https://bench.example')
  .setAudience('gw')
  .setSubject('alice')
  .setExpirationTime('2h')
  .sign(new TextEncoder().encode(SECRET));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function config(port) {
  return `listen: { address: 127.0.0.1:${port}, plaintext: true }
log: { level: warn, access: false, audit: ${join(work, `audit-${port}.log`)} }
reload: { watch: false }
identity_providers:
  bench: { type: jwt, issuer: https://bench.example, audiences: [gw], algorithms: [HS256], secret: ${SECRET} }
routes:
  - name: ws
    match: { path: /ws }
    upstream: { url: ${upstreamUrl} }
    public: true
  - name: api
    match: { path: / }
    upstream: { url: ${upstreamUrl}, connections: 64 }
    authenticate: [bench]
    rate_limit: { per: subject, limit: 10000000, window: 1m }
    authorize:
      allow:
        - { groups: admins }
        - { email_domain: partner.example }
        - { subject: svc-reporting }
        - { groups: support, mfa: true }
        - { groups: sales }
`;
}

async function startGateway(dir) {
  const port = await freePort();
  const file = join(work, `gw-${port}.yaml`);
  writeFileSync(file, config(port));
  const child = spawn(process.execPath, [join(dir, 'bin/zt-gateway.js'), 'start', '--config', file], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true))).on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, child };
}

/** utime + stime of a process, in µs. */
function cpuUs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

async function httpLoad(port, n) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 20, pipelining: 1 });
  let left = n;
  const headers = { authorization: `Bearer ${token}` };
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (left-- > 0) {
        const r = await pool.request({ path: '/x', method: 'GET', headers });
        await r.body.text();
        if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
      }
    }),
  );
  await pool.close();
}

async function wsLoad(port, n) {
  const clients = 4;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      await once(ws, 'open');
      let left = n / clients;
      const payload = Buffer.alloc(64, 0x63);
      await new Promise((resolve) => {
        ws.on('message', () => (--left > 0 ? ws.send(payload) : resolve()));
        ws.send(payload);
      });
      ws.close();
    }),
  );
}

async function measure(dir) {
  const gw = await startGateway(dir);
  await httpLoad(gw.port, 2000); // warm-up
  await wsLoad(gw.port, 2000);
  const a = cpuUs(gw.child.pid);
  await httpLoad(gw.port, requests);
  const b = cpuUs(gw.child.pid);
  await wsLoad(gw.port, messages);
  const c = cpuUs(gw.child.pid);
  gw.child.kill('SIGTERM');
  await once(gw.child, 'exit');
  return { request: (b - a) / requests, message: (c - b) / messages };
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const mine = [];
const base = [];
for (let r = 0; r < rounds; r++) {
  mine.push(await measure(ROOT));
  base.push(await measure(opts.baseline));
  console.log(`round ${r + 1}/${rounds}: this build ${mine.at(-1).request.toFixed(1)} µs/request ${mine.at(-1).message.toFixed(1)} µs/message; baseline ${base.at(-1).request.toFixed(1)} / ${base.at(-1).message.toFixed(1)}`);
}
for (const key of ['request', 'message']) {
  const m = median(mine.map((x) => x[key]));
  const b = median(base.map((x) => x[key]));
  const spread = (xs) => (Math.max(...xs) - Math.min(...xs)) / median(xs);
  const allowed = Math.max(0.03, 2 * Math.max(spread(mine.map((x) => x[key])), spread(base.map((x) => x[key]))));
  console.log(`CPU per ${key}: this build ${m.toFixed(1)} µs, baseline ${b.toFixed(1)} µs: ${(m / b).toFixed(3)}× (allowed ≤ ${(1 + allowed).toFixed(3)}×: ${m / b <= 1 + allowed ? 'yes' : 'no'})`);
}
for (const c of wss.clients) c.terminate();
wss.close();
upstream.close();
