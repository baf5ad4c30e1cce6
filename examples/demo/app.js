#!/usr/bin/env node
// The demo's "legacy app": a plain node:http server that knows nothing about zt-gateway. It shows the request
// exactly as it arrived, so you can see what the gateway added (X-Forwarded-*, X-Request-Id, X-ZT-* identity)
// and what it removed. Listens on 127.0.0.1 only: in the demo, only the gateway should reach it.
//
//   node examples/demo/app.js [--port 8080]     (port 0 picks a free one; run.js passes it)
//
// Paths: /static/* (files below ./static), /api/* (JSON), /ws (WebSocket echo), anything else (HTML page).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' } } });

// A fixed table, read once: the URL never becomes a file system path.
const STATIC = new Map([
  ['/static/style.css', { type: 'text/css; charset=utf-8', body: readFileSync(new URL('./static/style.css', import.meta.url)) }],
  ['/static/page.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('./static/page.js', import.meta.url)) }],
]);

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** Header names in the order received, lower-cased, with every value (raw, so duplicates show). */
function headerList(req) {
  const out = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) out.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
  return out;
}

function classOf(name) {
  if (name.startsWith('x-zt-')) return 'identity';
  if (name.startsWith('x-forwarded-') || name === 'x-request-id') return 'gateway';
  return '';
}

function page(req) {
  const headers = headerList(req);
  const identity = headers.filter(([n]) => n.startsWith('x-zt-'));
  const xff = headers.find(([n]) => n === 'x-forwarded-for');
  const rows = headers
    .map(([n, v]) => {
      // The signed assertion is long: show its start only (it is a short-lived JWT, see /.well-known/zt-gateway/jwks.json).
      const shown = n === 'x-zt-assertion' && v.length > 60 ? `${v.slice(0, 60)}…` : v;
      return `<tr class="${classOf(n)}"><th>${escape(n)}</th><td>${escape(shown)}</td></tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Legacy app behind zt-gateway</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/page.js" defer></script>
</head>
<body>
<h1>Legacy app</h1>
<p>This app has no login code and listens on 127.0.0.1 only. It prints the request it received.</p>
<dl>
  <dt>Request</dt><dd><code>${escape(req.method)} ${escape(req.url)}</code></dd>
  <dt>X-Forwarded-For</dt><dd><code>${xff ? escape(xff[1]) : '(none: this request did not come through the gateway)'}</code></dd>
  <dt>Identity</dt><dd>${
    identity.length === 0
      ? 'none: this request came through a public route, or not through the gateway.'
      : identity.map(([n, v]) => `<code>${escape(n)}: ${escape(n === 'x-zt-assertion' ? `${v.slice(0, 24)}…` : v)}</code>`).join('<br>')
  }</dd>
</dl>
<p id="links">Login, logout and step-up are the gateway's: this app only reads the headers.
<a href="/admin/">/admin/</a> (its route asks for a multi-factor login: step-up) ·
<a href="/.zt/session">session status</a> ·
<a href="/.zt/logout" id="logout">Log out</a> (the gateway asks to confirm: only its POST form logs out)</p>
<h2>Headers as received</h2>
<table>
${rows}
</table>
<h2>WebSocket echo</h2>
<p>Upgrades to <code>/ws</code> go through the same route, authentication and policy as any request.</p>
<form id="ws-form"><input id="ws-input" value="hello through the gateway" aria-label="message"> <button>send</button></form>
<pre id="ws-log"></pre>
</body>
</html>
`;
}

function send(res, status, type, body, extra = {}) {
  // A typical legacy app leaks its stack; the gateway removes Server and X-Powered-By on the way out.
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'x-powered-by': 'LegacyStack/1.0', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path.startsWith('/static/')) {
    const file = STATIC.get(path);
    if (!file) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    return send(res, 200, file.type, file.body, { 'cache-control': 'public, max-age=60' });
  }
  if (path === '/api' || path.startsWith('/api/')) {
    const body = `${JSON.stringify({ method: req.method, url: req.url, headers: Object.fromEntries(headerList(req)) }, null, 2)}\n`;
    return send(res, 200, 'application/json', body);
  }
  if (path === '/favicon.ico') return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  send(res, 200, 'text/html; charset=utf-8', page(req), { 'cache-control': 'no-store' });
});

const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
wss.on('connection', (ws, req) => {
  ws.send(`connected; X-Forwarded-For: ${req.headers['x-forwarded-for'] ?? '(none)'}`);
  ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo: ${data}`));
});
server.on('upgrade', (req, socket, head) => {
  if ((req.url ?? '').split('?')[0] !== '/ws') return socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

server.listen(Number(values.port), values.host, () => {
  const { port } = server.address();
  if (process.send) process.send({ type: 'listening', port });
  else console.log(`demo app: http://${values.host}:${port}/`);
});

function stop() {
  for (const client of wss.clients) client.terminate();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
// Started by run.js with an IPC channel: exit when the demo is gone, even if it was killed without warning.
if (process.channel) {
  process.channel.unref();
  process.once('disconnect', stop);
}
