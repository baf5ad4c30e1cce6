// Review (attack): an app behind the gateway can set the gateway's own cookies (session, its chunks, login
// transactions) through its responses.
//
// The gateway strips `__Host-zt`, `__Host-zt.1/.2` and `__Host-zt-tx-*` from every request it forwards (the app
// never sees the session: cookies.ts stripCookies), but response-headers.ts relays the app's Set-Cookie lines
// unchecked. One app on a shared host (compromised, or with a header-injection bug, or a feature that sets
// a cookie named by the user) can therefore:
//  - plant a sealed session of the attacker's account (`__Host-zt=<attacker's cookie>`): every app on the
//    host then acts for the attacker's identity (login CSRF / session swap across routes);
//  - plant `__Host-zt.1` (a foreign chunk): the victim's split session no longer opens (logged out), and since
//    split sessions arrived today, a chunk the gateway did not write now decides whether the login holds.
// Safe behaviour: Set-Cookie lines from upstreams that name the gateway's cookies (the session cookie, its
// chunks, its -tx- transactions) are dropped; the app's own cookies still pass.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

let op: TestOP;
let app: Upstream;
let gw: OidcGateway;
let wsApp: http.Server;
let caCert: string;

/** A WebSocket upstream whose 101 sets the gateway's cookies beside its own. */
async function startCookieWsUpstream(): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket) => {
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n` +
        'Set-Cookie: __Host-zt=2~planted; Path=/; Secure; HttpOnly\r\nSet-Cookie: __Host-zt.2=planted; Path=/; Secure\r\nSet-Cookie: app_ws=1; Path=/\r\n\r\n',
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

/** A WebSocket handshake through the gateway: the head of its answer. */
function handshake(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: caCert, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
      socket.write(`GET /ws HTTP/1.1\r\nHost: localhost:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    let head = '';
    socket.on('data', (c: Buffer) => {
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end !== -1) {
        socket.destroy();
        resolve(head.slice(0, end));
      }
    });
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  const ca = await createCA('review CA');
  caCert = ca.cert;
  wsApp = await startCookieWsUpstream();
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  app = await startUpstream((_req, res, rec) => {
    if (!rec.url.startsWith('/plant')) return false;
    res.writeHead(200, {
      'content-type': 'text/plain',
      'set-cookie': [
        '__Host-zt=2~eyJhdHRhY2tlcg; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=86400',
        '__Host-zt.1=planted-chunk; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=86400',
        '__Host-zt-tx-abc=planted-tx; Path=/; Secure; HttpOnly',
        'app_pref=dark; Path=/',
      ],
    });
    res.end('ok');
    return true;
  });
  gw = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-review-cookies',
    routes: `  - name: ws
    match: { path: /ws }
    upstream: { url: http://127.0.0.1:${(wsApp.address() as AddressInfo).port} }
    public: true
  - name: app
    match: { path: / }
    upstream: { url: ${app.url} }
    public: true
`,
  });
});

afterAll(async () => {
  await gw?.close();
  await app?.close();
  wsApp?.close();
  await op?.close();
});

describe("review: an upstream's Set-Cookie naming the gateway's cookies", () => {
  it("the app's own cookie passes, the gateway's session, chunk and transaction cookies never do", async () => {
    const r = await gw.send('/plant');
    expect(r.status).toBe(200);
    const names = r.setCookie.map((l) => l.slice(0, l.indexOf('=')));
    expect(names).toContain('app_pref');
    expect(names.filter((n) => n.startsWith('__Host-zt'))).toEqual([]);
  });

  it("a WebSocket upstream's 101 cannot set them either; its own cookie passes", async () => {
    const head = await handshake(gw.gw.port);
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    const cookies = head.split('\r\n').filter((l) => l.toLowerCase().startsWith('set-cookie:')).map((l) => l.slice(l.indexOf(':') + 1).trim());
    expect(cookies.map((c) => c.slice(0, c.indexOf('=')))).toEqual(['app_ws']);
  });
});
