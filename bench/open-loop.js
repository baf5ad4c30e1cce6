#!/usr/bin/env node
// Open-loop load: requests leave on a fixed schedule (RATE per second) whatever the server's speed, and
// each latency is measured from the request's scheduled start, so a stall counts for every request it
// delays (no coordinated omission). A closed loop (wrk, autocannon) cannot compare tail latency between
// servers of different throughput: at fixed connections, latency is connections / throughput.
// Plain keep-alive sockets and a minimal response reader (Content-Length bodies, as the bench upstream
// sends): an HTTP client library's own allocations and GC pauses would otherwise dominate the tail.
// Usage: node bench/open-loop.js <url> <rate> <seconds> [headers JSON] [warm-up seconds] → one JSON line.
// The warm-up's requests (JIT, connection setup on both sides) are sent on the same schedule, not counted.
import net from 'node:net';

const [url, rateArg, secondsArg, headersArg, warmupArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const headers = headersArg ? JSON.parse(headersArg) : {};
const target = new URL(url);
const head = Buffer.from(
  `GET ${target.pathname}${target.search} HTTP/1.1\r\nhost: ${target.host}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`,
  'latin1',
);
const skip = Math.round(rate * Number(warmupArg ?? 2));
const total = skip + Math.round(rate * seconds);
const intervalMs = 1000 / rate;

const latencies = new Float64Array(total - skip);
let recorded = 0;
let failed = 0;
let non2xx = 0;
let done = 0;
const { promise: finished, resolve } = Promise.withResolvers();
const finish = () => {
  if (++done === total) resolve();
};

/** One keep-alive connection answering one request at a time; `idle` holds the free ones. */
const idle = [];
const backlog = []; // [index, scheduledAt] waiting for a free connection
function connection() {
  const socket = net.connect({ host: target.hostname, port: Number(target.port) });
  socket.setNoDelay(true);
  const c = { socket, index: -1, scheduledAt: 0, buf: Buffer.alloc(0), need: -1, status: 0 };
  socket.on('data', (chunk) => {
    c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
    for (;;) {
      if (c.need < 0) {
        const end = c.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = c.buf.toString('latin1', 0, end);
        c.status = Number(text.slice(9, 12));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        c.need = end + 4 + (m ? Number(m[1]) : 0);
      }
      if (c.buf.length < c.need) return;
      c.buf = c.buf.subarray(c.need);
      c.need = -1;
      complete(c);
      if (c.buf.length === 0) return;
    }
  });
  // A connection that fails or is closed by the server with a request pending: that request failed (without
  // this, one closed connection left the run waiting forever for an answer that never comes).
  const lost = () => {
    if (c.index >= 0) {
      if (c.index >= skip) failed++;
      finish();
    }
    c.index = -1;
  };
  socket.on('error', lost);
  socket.on('close', lost);
  return c;
}
function complete(c) {
  if (c.index >= skip) {
    if (c.status < 200 || c.status > 299) non2xx++;
    latencies[recorded++] = performance.now() - c.scheduledAt;
  }
  c.index = -1;
  finish();
  const next = backlog.shift();
  if (next) send(c, next[0], next[1]);
  else idle.push(c);
}
function send(c, index, scheduledAt) {
  c.index = index;
  c.scheduledAt = scheduledAt;
  c.socket.write(head);
}
for (let i = 0; i < 64; i++) idle.push(connection());

let sent = 0;
const t0 = performance.now() + 50;
// A 1 ms tick sends every request whose time has come. Send times are on that 1 ms grid (a request due
// within a millisecond is scheduled at the next grid point), and each latency starts at its grid point,
// so the tick's granularity adds nothing while a late tick (a stall) still counts.
const tick = setInterval(() => {
  const now = performance.now();
  while (sent < total && t0 + Math.ceil(sent * intervalMs) <= now) {
    const at = t0 + Math.ceil(sent * intervalMs);
    const c = idle.pop();
    if (c) send(c, sent, at);
    else backlog.push([sent, at]);
    sent++;
  }
  if (sent >= total) clearInterval(tick);
}, 1);

await finished;
for (const c of idle) c.socket.destroy();
const sorted = latencies.subarray(0, recorded).sort();
const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const r2 = (n) => Math.round(n * 100) / 100;
process.stdout.write(`${JSON.stringify({ rate, seconds, requests: recorded, failed, non2xx, p50: r2(at(0.5)), p90: r2(at(0.9)), p99: r2(at(0.99)), max: r2(sorted.at(-1) ?? NaN) })}\n`);
process.exit(0);
