// Bare undici Pool proxy: the fastest plain forwarding undici offers (pool.stream straight into res).
import http from 'node:http';
import { Pool } from 'undici';

const target = process.env.TARGET;
const pool = new Pool(target, { connections: 128, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'host', 'expect']);

const server = http.createServer((req, res) => {
  const headers = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!HOP.has(req.rawHeaders[i].toLowerCase())) headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .stream({ path: req.url, method: req.method, headers, body: hasBody ? req : null, opaque: res }, ({ statusCode, headers: h, opaque }) => {
      const out = [];
      for (const k in h) if (!HOP.has(k)) (Array.isArray(h[k]) ? h[k] : [h[k]]).forEach((v) => out.push(k, v));
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
