// Bare http-proxy-3 proxy with a keep-alive agent (its documented setup for throughput).
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const proxy = createProxyServer({ target: process.env.TARGET, agent, ws: true });
proxy.on('error', (_err, _req, res) => {
  if (res && 'writeHead' in res && !res.headersSent) res.writeHead(502).end();
});
const server = http.createServer((req, res) => proxy.web(req, res));
server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ ready: server.address().port })}\n`));
