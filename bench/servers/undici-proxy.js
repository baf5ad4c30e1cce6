// Bare undici Pool proxy: the fastest plain forwarding undici offers (pool.stream straight into res).
// GATEWAY_HEADERS (JSON [name, value, …]) makes it also do the header work every gateway request carries:
// those response headers (the gateway's security headers) plus a fresh X-Request-Id, and the rebuilt
// Forwarded / X-Forwarded-* / X-Request-Id headers upstream — the floor below which no gateway can go.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Pool } from 'undici';

const target = process.env.TARGET;
const pool = new Pool(target, { connections: 128, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'host', 'expect']);
const extra = process.env.GATEWAY_HEADERS ? JSON.parse(process.env.GATEWAY_HEADERS) : null;
const upstreamHost = new URL(target).host;

const server = http.createServer((req, res) => {
  const headers = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!HOP.has(req.rawHeaders[i].toLowerCase())) headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const id = extra ? randomUUID() : '';
  if (extra) {
    const peer = req.socket.remoteAddress;
    const host = req.headers.host ?? '';
    headers.push('host', upstreamHost, 'forwarded', `for=${peer};proto=http;host="${host}"`, 'x-forwarded-for', peer, 'x-forwarded-proto', 'http', 'x-forwarded-host', host, 'x-request-id', id);
  }
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .stream({ path: req.url, method: req.method, headers, body: hasBody ? req : null, opaque: res }, ({ statusCode, headers: h, opaque }) => {
      const out = [];
      for (const k in h) if (!HOP.has(k)) (Array.isArray(h[k]) ? h[k] : [h[k]]).forEach((v) => out.push(k, v));
      if (extra) out.push(...extra, 'x-request-id', id);
      opaque.writeHead(statusCode, out);
      return opaque;
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ ready: server.address().port })}\n`));
