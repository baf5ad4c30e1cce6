// Bench upstream: a minimal node:http server (small JSON answer), a streaming /big download, an upload
// sink and a WebSocket echo on /ws. Prints {"ready":port} when listening.
import http from 'node:http';
import { WebSocketServer } from 'ws';

const BODY = Buffer.from(JSON.stringify({ ok: true, service: 'legacy', items: [1, 2, 3, 4, 5] }));
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/big')) {
    const total = Number(new URL(req.url, 'http://x').searchParams.get('bytes') ?? 1e6);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(CHUNK.length, total - sent);
        sent += n;
        if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    return pump();
  }
  let bytes = 0;
  req.on('data', (c) => (bytes += c.length));
  req.on('end', () => {
    if (req.method === 'POST') {
      const out = Buffer.from(JSON.stringify({ received: bytes }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': out.length });
      return res.end(out);
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
});
server.keepAliveTimeout = 60_000;
const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: server.address().port })}\n`);
});
