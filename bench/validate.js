#!/usr/bin/env node
// node bench/validate.js [--duration 5] : req/s of a route validating a 1 KB JSON body (inline schema,
// held and forwarded byte for byte) against a bare public route receiving the same POST, in one run.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { request } from 'undici';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: { duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' } } });
const duration = Number(opts.duration);
const connections = Number(opts.connections);
const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (hasTaskset) execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
const children = new Set();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function start(args, cpu, port) {
  const cmd = hasTaskset ? 'taskset' : process.execPath;
  const argv = hasTaskset ? ['-c', String(cpu), process.execPath, ...args] : args;
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  if (port === undefined) {
    let buf = '';
    return new Promise((resolve) =>
      child.stdout.on('data', (d) => {
        buf += d;
        const m = /\{"ready":(\d+)\}/.exec(buf);
        if (m) resolve({ child, port: Number(m[1]) });
      }),
    );
  }
  child.stdout.resume();
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true))).on('error', () => r(false));
    });
    if (ok) return { child, port };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('gateway did not start');
}

// A 1 KB order: line items until the JSON text reaches 1024 bytes.
const order = { customer: 'ACME Corporation', reference: 'PO-2026-0042', items: [] };
while (JSON.stringify(order).length < 1024) order.items.push({ sku: `SKU-${1000 + order.items.length}`, qty: order.items.length + 1, note: 'deliver to dock 4' });
const body = JSON.stringify(order);
const schema = JSON.stringify({
  type: 'object',
  required: ['customer', 'items'],
  properties: {
    customer: { type: 'string', minLength: 1, maxLength: 200 },
    reference: { type: 'string', pattern: '^PO-[0-9]{4}-[0-9]{4}$' },
    items: {
      type: 'array',
      maxItems: 100,
      items: { type: 'object', required: ['sku', 'qty'], properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 }, note: { type: 'string', maxLength: 200 } } },
    },
  },
});

const upstream = await start(['bench/servers/upstream.js'], 1);
const port = await freePort();
const work = mkdtempSync(join(tmpdir(), 'ztgw-bench-validate-'));
const file = join(work, 'gw.yaml');
writeFileSync(
  file,
  `listen: { address: 127.0.0.1:${port}, plaintext: true }
log: { level: warn, access: false, audit: ${join(work, 'audit.log')} }
identity_headers: { assertion: false }
reload: { watch: false }
routes:
  - { name: validated, match: { path: /orders }, upstream: { url: "http://127.0.0.1:${upstream.port}", connections: 128 }, public: true, validate: { body: ${schema}, max_body: 16kb } }
  - { name: bare, match: { path: /bare }, upstream: { url: "http://127.0.0.1:${upstream.port}", connections: 128 }, public: true }
`,
);
const gw = await start(['bin/zt-gateway.js', 'start', '--config', file], 0, port);

const headers = { 'content-type': 'application/json' };
for (const path of ['/orders', '/bare']) {
  const r = await request(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${path}: ${r.statusCode} ${text}`);
}
const run = (path, seconds) =>
  new Promise((resolve, reject) =>
    autocannon({ url: `http://127.0.0.1:${port}${path}`, method: 'POST', headers, body, connections, duration: seconds }, (err, r) => (err ? reject(err) : resolve(r))),
  );
const results = {};
// Interleaved: bare, validated, validated, bare (the machine is shared; averages per route).
const samples = { '/bare': [], '/orders': [] };
for (const path of ['/bare', '/orders', '/orders', '/bare']) {
  await run(path, 1); // warm-up
  samples[path].push(await run(path, duration));
}
for (const path of ['/bare', '/orders']) {
  const rs = samples[path];
  const r = { requests: { average: rs.reduce((a, x) => a + x.requests.average, 0) / rs.length }, latency: { p99: Math.max(...rs.map((x) => x.latency.p99)) }, non2xx: rs.reduce((a, x) => a + x.non2xx, 0), errors: rs.reduce((a, x) => a + x.errors, 0) };
  results[path] = { rps: Math.round(r.requests.average), p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}
console.log(`validate bench: ${Buffer.byteLength(body)} B JSON body, ${duration}s, ${connections} connections, node ${process.version}${hasTaskset ? ', gateway on CPU 0' : ''}`);
console.log(`  bare public route (POST streamed): ${results['/bare'].rps} req/s, p99 ${results['/bare'].p99} ms, non-2xx ${results['/bare'].non2xx}`);
console.log(`  validating route (inline schema):  ${results['/orders'].rps} req/s, p99 ${results['/orders'].p99} ms, non-2xx ${results['/orders'].non2xx}`);
console.log(`  ratio validated / bare: ${(results['/orders'].rps / results['/bare'].rps).toFixed(2)}`);
for (const c of [gw.child, upstream.child]) {
  c.kill('SIGTERM');
  await once(c, 'exit');
}
