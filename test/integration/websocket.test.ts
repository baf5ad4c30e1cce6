// WebSocket upgrades go through normalize → route → authenticate like any request; refused upgrades get an
// HTTP problem answer and never a socket (the upstream never sees a connection).
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { createHash } from 'node:crypto';

const KEY = 'ws-test-key-0123456789abcdef0123456789';

interface WsUpstream {
  url: string;
  port: number;
  /** Upgrade requests as the upstream received them. */
  upgrades: Array<{ url: string; headers: IncomingMessage['headers']; rawHeaders: string[] }>;
  /** TCP connections accepted (any purpose). */
  connections: number;
  close(): Promise<void>;
}

async function startWsUpstream(): Promise<WsUpstream> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('plain'));
  const wss = new WebSocketServer({ noServer: true });
  // A legacy upstream that brags about its software on the 101 answer.
  wss.on('headers', (headers) => headers.push('Server: legacy/1.0', 'X-Powered-By: PHP/5.2'));
  const up: WsUpstream = { url: '', port: 0, upgrades: [], connections: 0, close: async () => undefined };
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    up.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    up.upgrades.push({ url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    if (req.url?.startsWith('/ws/deny')) {
      socket.end('HTTP/1.1 403 Forbidden\r\nServer: legacy/1.0\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${data.toString()}`, { binary: isBinary }));
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  up.port = (server.address() as AddressInfo).port;
  up.url = `http://127.0.0.1:${up.port}`;
  up.close = () =>
    new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      wss.close();
      server.close(() => r());
    });
  return up;
}

let echo: WsUpstream;
let guarded: WsUpstream; // behind routes that must refuse: its connection count must stay 0
let plain: Upstream;
let gw: TestGateway;
let closedPort: number;

beforeAll(async () => {
  echo = await startWsUpstream();
  guarded = await startWsUpstream();
  plain = await startUpstream();
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: keys.yaml }
  tokens: { type: jwt, issuer: https://ci.example, audiences: [gw], algorithms: [HS256], secret: ws-test-secret-0123456789abcdef0123456789 }
routes:
  - name: stepws
    match: { path: /stepws }
    upstream: { url: ${guarded.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [tokens, keys]
    authorize: { allow: [{ authenticated: true }] }
    step_up: { acr: mfa }
  - name: ws
    match: { path: /ws }
    upstream: { url: ${echo.url}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: private
    match: { path: /private }
    upstream: { url: ${guarded.url}, timeout: 2s, connect_timeout: 1s }
  - name: nows
    match: { path: /nows }
    upstream: { url: ${guarded.url}, timeout: 2s, connect_timeout: 1s }
    public: true
    websocket: false
  - name: wsdown
    match: { path: /wsdown }
    upstream: { url: http://127.0.0.1:${closedPort}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: wsfault
    match: { path: /wsfault }
    upstream: { url: ${echo.url}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: wslimited
    match: { path: /wslimited }
    upstream: { url: ${echo.url}, timeout: 2s, connect_timeout: 1s }
    public: true
    rate_limit: { per: ip, limit: 1000, window: 1m }
  - name: plain
    match: { path: /plain }
    upstream: { url: ${plain.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`, { files: { 'keys.yaml': `keys:\n  - { id: ws, hash: ${createHash('sha256').update(KEY).digest('hex')}, subject: svc-ws }\n` } });
});

afterAll(async () => {
  await gw?.close();
  await echo?.close();
  await guarded?.close();
  await plain?.close();
});

function wsUrl(path: string): string {
  return `${gw.url.replace(/^http/, 'ws')}${path}`;
}

function open(path: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(path), { headers, handshakeTimeout: 3000 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected ${res.statusCode}`)));
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary }));
    ws.once('error', reject);
  });
}

interface Refusal {
  status: number;
  headers: IncomingMessage['headers'];
  body: { code: string; status: number; request_id: string };
  text: string;
  opened: boolean;
}

/** Attempts an upgrade that must be refused; resolves with the HTTP answer the client got instead. */
function refusedUpgrade(path: string, headers: Record<string, string> = {}): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(path), { headers });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no answer to the upgrade of ${path} within 3s`));
    }, 3000);
    let opened = false;
    ws.once('open', () => {
      opened = true;
      ws.terminate();
      reject(new Error('upgrade was not refused'));
    });
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        clearTimeout(timer);
        const json = res.headers['content-type'] === 'application/problem+json';
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: json ? (JSON.parse(text) as Refusal['body']) : ({} as Refusal['body']), opened });
      });
      res.on('error', reject);
    });
  });
}

describe('WebSocket through the gateway', () => {
  it('round-trips text and binary messages', async () => {
    const ws = await open('/ws/chat');
    try {
      const texts = ['hello', 'ünïcødé ✓', 'x'.repeat(100_000)];
      for (const t of texts) {
        const reply = nextMessage(ws);
        ws.send(t);
        const got = await reply;
        expect(got.isBinary).toBe(false);
        expect(got.data.toString('utf8')).toBe(`echo:${t}`);
      }
      const bin = Buffer.from([0, 1, 2, 255, 254]);
      const reply = nextMessage(ws);
      ws.send(bin);
      const got = await reply;
      expect(got.isBinary).toBe(true);
      expect(Buffer.compare(got.data, bin)).toBe(0);
    } finally {
      ws.close();
    }
  });

  it('answers 101 without the upstream banners and with the request id the upstream saw', async () => {
    const ws = new WebSocket(wsUrl('/ws/banner'));
    const upgraded = new Promise<IncomingMessage>((resolve, reject) => {
      ws.once('upgrade', resolve);
      ws.once('error', reject);
    });
    const opened = new Promise<void>((r) => ws.once('open', () => r()));
    const res = await upgraded;
    await opened;
    ws.close();
    expect(res.statusCode).toBe(101);
    expect(res.headers.server).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-request-id']).toBe(echo.upgrades.at(-1)!.headers['x-request-id']);
  });

  it('forwards the canonical path, rebuilds X-Forwarded-For and Forwarded, and never passes a spoofed identity header', async () => {
    const before = echo.upgrades.length;
    const ws = await open('/ws/%61b/c?room=1&next=../x', {
      'x-zt-user': 'admin',
      'X_ZT_User': 'admin',
      'x-forwarded-for': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
      'x-real-ip': '6.6.6.6',
    });
    ws.close();
    expect(echo.upgrades.length).toBe(before + 1);
    const up = echo.upgrades.at(-1)!;
    expect(up.url).toBe('/ws/ab/c?room=1&next=../x');
    expect(up.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(up.headers['x-forwarded-proto']).toBe('http');
    expect(up.headers['x-forwarded-host']).toBe(`127.0.0.1:${gw.port}`);
    expect(up.headers.host).toBe(`127.0.0.1:${echo.port}`);
    expect(up.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(up.headers.upgrade).toBe('websocket');
    const names = up.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n.startsWith('x-zt') || n.startsWith('x_zt'))).toEqual([]);
    // Forwarded is the gateway's own element only (RFC 7239), never the client's.
    expect(up.headers.forwarded).toBe(`for=127.0.0.1;proto=http;host="127.0.0.1:${gw.port}"`);
    expect(names.filter((n) => n === 'forwarded')).toHaveLength(1);
    expect(up.rawHeaders.some((v) => v.includes('6.6.6.6'))).toBe(false);
    expect(names).not.toContain('x-real-ip');
    expect(names.filter((n) => n === 'x-forwarded-for')).toHaveLength(1);
  });

  it('refuses an upgrade to a non-public route with an HTTP 401 problem, never a socket', async () => {
    const r = await refusedUpgrade('/private/socket');
    expect(r.opened).toBe(false);
    expect(r.status).toBe(401);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.body.code).toBe('GW_ERR_UNAUTHENTICATED');
    expect(r.body.request_id).toBe(r.headers['x-request-id']);
    expect(guarded.connections).toBe(0);
    expect(guarded.upgrades).toEqual([]);
  });

  it('refuses an upgrade that needs a step-up with the RFC 9470 401 and audits it as step_up', async () => {
    const r = await refusedUpgrade('/stepws/socket', { authorization: `ApiKey ${KEY}` });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('error="insufficient_user_authentication"');
    expect(guarded.upgrades).toEqual([]);
    await waitFor(() => gw.logs.some((l) => l.msg === 'decision' && l.path === '/stepws/socket'), { timeoutMs: 2000 });
    const rec = gw.logs.find((l) => l.msg === 'decision' && l.path === '/stepws/socket');
    expect(rec).toMatchObject({ decision: 'step_up', upgrade: 'websocket', subject: 'svc-ws', status: 401 });
  });

  it('answers 404 GW_ERR_NO_ROUTE to an upgrade for an unmatched path', async () => {
    const r = await refusedUpgrade('/nowhere');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('GW_ERR_NO_ROUTE');
    expect(guarded.connections).toBe(0);
  });

  it('answers 400 to an upgrade on a route with websocket: false', async () => {
    const r = await refusedUpgrade('/nows/socket');
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('GW_ERR_BAD_REQUEST');
    expect(guarded.connections).toBe(0);
    expect(guarded.upgrades).toEqual([]);
  });

  it('refuses ambiguous upgrade targets with 400 before any upstream contact', async () => {
    // A WebSocket client would normalize these itself: send them raw.
    const before = echo.upgrades.length;
    const connectionsBefore = echo.connections;
    for (const target of ['/ws/../private', '/ws/%2e%2e/private', '/ws%2Fx', '/ws//x']) {
      const res = await rawRequest(
        gw.port,
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      expect(res.status, target).toBe(400);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect((JSON.parse(res.body) as { code: string }).code, target).toBe('GW_ERR_BAD_PATH');
    }
    expect(echo.upgrades.length).toBe(before);
    expect(echo.connections).toBe(connectionsBefore);
    expect(guarded.connections).toBe(0);
  });

  it('answers 502 GW_ERR_UPSTREAM_UNAVAILABLE when the WebSocket upstream is down, naming no address', async () => {
    const r = await refusedUpgrade('/wsdown/socket');
    expect(r.status).toBe(502);
    expect(r.body.code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    expect(r.text.replace(r.body.request_id, '')).not.toMatch(new RegExp(`127\\.0\\.0\\.1|${closedPort}|ECONNREFUSED`));
  });

  it('relays an upstream refusal of the handshake without its banners', async () => {
    const r = await refusedUpgrade('/ws/deny');
    expect(r.status).toBe(403);
    expect(r.text).toBe('nope');
    expect(r.headers.server).toBeUndefined();
    expect(r.headers['x-request-id']).toBe(echo.upgrades.at(-1)!.headers['x-request-id']);
  });

  it('answers 500 GW_ERR_INTERNAL (never a crash) when the upgrade path throws unexpectedly, sync or after an async stage', async () => {
    // Fault injection: a route whose upstream origin cannot be parsed makes the proxy step throw. Compiled
    // routes are frozen, so the running state gets a router that hands out faulty copies of the two routes.
    type Route = { name: string; upstream: { origin: string } };
    type Compiled = { routes: Route[]; router: { match(h: string, p: string, m: string): Route | undefined } };
    type Group = { pick(): { target: { origin: string } } };
    const state = gw.gateway.runtime.current as unknown as { compiled: Compiled; upstreams: Map<string, Group> };
    const real = state.compiled;
    const routes = real.routes;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const restore: Array<() => void> = [];
    try {
      const faulty = new Map<Route, Route>();
      for (const name of ['wsfault', 'wslimited']) {
        const route = routes.find((r) => r.name === name) as Route;
        faulty.set(route, { ...route, upstream: { ...route.upstream, origin: 'not a url' } });
        // The endpoint the route's balancer hands out is the faulty one.
        const group = state.upstreams.get(name) as Group;
        state.upstreams.set(name, { pick: () => Object.assign(Object.create(Object.getPrototypeOf(group.pick())) as object, group.pick(), { target: { ...group.pick().target, origin: 'not a url' } }) });
        restore.push(() => state.upstreams.set(name, group));
      }
      const match = (h: string, p: string, m: string) => {
        const r = real.router.match(h, p, m);
        return (r && faulty.get(r)) ?? r;
      };
      state.compiled = { ...real, router: { ...real.router, match } };
      restore.push(() => (state.compiled = real));
      for (const path of ['/wsfault/x', '/wslimited/x']) {
        const before = echo.upgrades.length;
        const r = await refusedUpgrade(path);
        expect(r.status, path).toBe(500);
        expect(r.body.code, path).toBe('GW_ERR_INTERNAL');
        expect(r.text, path).not.toMatch(/not a url|TypeError|Invalid URL|\n\s+at /);
        expect(echo.upgrades.length).toBe(before);
      }
    } finally {
      for (const f of restore) f();
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    // Both routes work again.
    for (const path of ['/wsfault/y', '/wslimited/y']) {
      const ws = await open(path);
      const reply = nextMessage(ws);
      ws.send('again');
      expect((await reply).data.toString()).toBe('echo:again');
      ws.close();
    }
  });

  it('refuses `Upgrade: h2c` on a GET (400, Connection: close): never served as a plain request (issue 17)', async () => {
    const before = plain.received.length;
    const res = await rawRequest(
      gw.port,
      `GET /plain/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n` +
        'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    );
    expect(res.status).toBe(400);
    expect(res.headers.connection).toBe('close');
    expect(res.headers.upgrade).toBeUndefined();
    expect(JSON.parse(res.body).code).toBe('GW_ERR_BAD_REQUEST');
    expect(plain.received.length).toBe(before);
  });

  it('logs one upgrade record per attempt with its outcome', async () => {
    // 17 attempts above (the last, a closed /wslimited/y socket, is recorded when its close arrives).
    await waitFor(() => gw.logs.filter((l) => l.msg === 'upgrade').length >= 17);
    const upgrades = gw.logs.filter((l) => l.msg === 'upgrade');
    const byRoute = (route: string | undefined) => upgrades.filter((l) => l.route === route).map((l) => l.code);
    expect(byRoute('private')).toEqual(['GW_ERR_UNAUTHENTICATED']);
    expect(byRoute('nows')).toEqual(['GW_ERR_BAD_REQUEST']);
    expect(byRoute('ws')).toEqual([undefined, undefined, undefined, undefined]);
    expect(byRoute('wsdown')).toEqual(['GW_ERR_UPSTREAM_UNAVAILABLE']);
    expect(byRoute('wsfault')).toEqual(['GW_ERR_INTERNAL', undefined]);
    expect(byRoute('wslimited')).toEqual(['GW_ERR_INTERNAL', undefined]);
    expect(byRoute(undefined).sort()).toEqual([...Array(4).fill('GW_ERR_BAD_PATH'), 'GW_ERR_NO_ROUTE']);
  });
});
