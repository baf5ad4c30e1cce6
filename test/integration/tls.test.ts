// TLS on both sides: the HTTPS listener (minimum version, plain HTTP refused, redirect listener, certificate
// rotation on reload) and HTTPS upstreams verified against a configured CA (never without verification).
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { createCA, type CertificateAuthority, type Issued } from '../../tools/pki.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

let ca: CertificateAuthority;
let upstreamCa: CertificateAuthority;
let rogueCa: CertificateAuthority;
let first: Issued;
let upstream: Upstream;
let trustedHttps: https.Server;
let rogueHttps: https.Server;
let gw: TestGateway;
let dispatcher: Agent;
const dir = tempDir('ztgw-tls-');

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

async function httpsUpstream(cert: Issued): Promise<https.Server> {
  const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`tls-upstream ${req.url}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function portOf(s: https.Server): number {
  return (s.address() as AddressInfo).port;
}

/** A fresh TLS connection (no session reuse): resolves with the certificate the server presented. */
function peerCertificate(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.DetailedPeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'localhost', ...opts }, () => {
      const cert = socket.getPeerCertificate(true);
      socket.destroy();
      resolve(cert);
    });
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  [ca, upstreamCa, rogueCa] = await Promise.all([createCA('gw test CA'), createCA('upstream CA'), createCA('rogue CA')]);
  first = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const upCert = await upstreamCa.issue({ cn: '127.0.0.1', dns: ['localhost'], ips: ['127.0.0.1'] });
  const rogueCert = await rogueCa.issue({ cn: '127.0.0.1', dns: ['localhost'], ips: ['127.0.0.1'] });
  upstream = await startUpstream();
  trustedHttps = await httpsUpstream(upCert);
  rogueHttps = await httpsUpstream(rogueCert);
  writeFileSync(join(dir, 'upstream-ca.crt'), upstreamCa.cert);
  gw = await startGateway(
    `listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
  redirect_http: 127.0.0.1:0
shutdown: { drain_timeout: 1s }
routes:
  - name: tls-upstream
    match: { path: /secure-upstream }
    upstream: { url: https://127.0.0.1:${portOf(trustedHttps)}, timeout: 2s, connect_timeout: 1s, tls: { ca: upstream-ca.crt } }
    public: true
  - name: rogue-with-ca
    match: { path: /rogue-with-ca }
    upstream: { url: https://127.0.0.1:${portOf(rogueHttps)}, timeout: 2s, connect_timeout: 1s, tls: { ca: upstream-ca.crt } }
    public: true
  - name: rogue-system-ca
    match: { path: /rogue-system-ca }
    upstream: { url: https://127.0.0.1:${portOf(rogueHttps)}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`,
    { dir, files: { 'gw.crt': first.cert, 'gw.key': first.key } },
  );
  dispatcher = new Agent({ connect: { ca: ca.cert } });
});

afterAll(async () => {
  await dispatcher?.close();
  await gw?.close();
  await upstream?.close();
  for (const s of [trustedHttps, rogueHttps]) {
    s?.closeAllConnections();
    await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  }
});

describe('HTTPS listener', () => {
  it('completes a handshake with a client that trusts the CA, and forwards with X-Forwarded-Proto https', async () => {
    expect(gw.url).toBe(`https://127.0.0.1:${gw.port}`);
    const res = await request(`${gw.url}/hello?x=1`, { dispatcher });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    const rec = upstream.received.at(-1)!;
    expect(rec.url).toBe('/hello?x=1');
    expect(rec.headers['x-forwarded-proto']).toBe('https');
  });

  it('fails the handshake for a client that does not trust the CA', async () => {
    await expect(request(`${gw.url}/hello`)).rejects.toMatchObject({ code: expect.stringMatching(/CERT|SELF_SIGNED|UNABLE/) });
  });

  it('negotiates TLS 1.2 and TLS 1.3', async () => {
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const protocol = await new Promise<string | null>((resolve, reject) => {
        const s = tls.connect(
          { host: '127.0.0.1', port: gw.port, ca: ca.cert, servername: 'localhost', minVersion: version, maxVersion: version },
          () => {
            resolve(s.getProtocol());
            s.destroy();
          },
        );
        s.once('error', reject);
      });
      expect(protocol).toBe(version);
    }
  });

  it('refuses a TLS 1.1 client (minVersion TLSv1.2)', async () => {
    const before = gw.logs.filter((l) => l.msg === 'tls handshake failed').length;
    const err = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
      const s = tls.connect(
        {
          host: '127.0.0.1',
          port: gw.port,
          ca: ca.cert,
          servername: 'localhost',
          minVersion: 'TLSv1.1',
          maxVersion: 'TLSv1.1',
          // OpenSSL 3 only offers TLS 1.1 at security level 0: make the client really send a 1.1 hello.
          ciphers: 'DEFAULT@SECLEVEL=0',
        },
        () => {
          s.destroy();
          reject(new Error(`TLS 1.1 handshake succeeded (${s.getProtocol()})`));
        },
      );
      s.once('error', resolve);
    });
    expect(err.code).toMatch(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS/);
    // The server saw (and refused) the hello: the refusal is not the client library's own.
    await waitFor(() => gw.logs.filter((l) => l.msg === 'tls handshake failed').length > before);
  });

  it('does not answer plain HTTP on the TLS port', async () => {
    const before = upstream.received.length;
    const res = await rawRequest(gw.port, `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`, { timeoutMs: 1000 }).catch(
      (err: NodeJS.ErrnoException) => ({ status: 0, head: '', body: '', headers: {}, error: err.code }),
    );
    expect(res.status).toBe(0);
    expect(res.head.startsWith('HTTP/')).toBe(false);
    expect(upstream.received.length).toBe(before);
  });

  it('redirects plain HTTP on redirect_http with 308 to https, same host and path', async () => {
    const port = gw.gateway.redirectPort!;
    expect(port).toBeGreaterThan(0);
    const res = await rawRequest(port, `GET /some/path?q=1&next=/x HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`);
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe(`https://localhost:${gw.port}/some/path?q=1&next=/x`);
    expect(res.body).toBe('');
    const bad = await rawRequest(port, `GET /x HTTP/1.1\r\nHost: evil.example/x\r\n\r\n`);
    expect(bad.status).toBe(400);
    expect(bad.headers.location).toBeUndefined();
  });

  it('rotates the certificate on reload: new connections see the new one', async () => {
    const before = await peerCertificate(gw.port);
    expect(before.fingerprint256).toBe(fingerprint(first.cert));
    const second = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    writeFileSync(join(dir, 'gw.crt'), second.cert);
    writeFileSync(join(dir, 'gw.key'), second.key);
    expect(await gw.gateway.reload()).toBe(true);
    const after = await peerCertificate(gw.port);
    expect(after.fingerprint256).toBe(fingerprint(second.cert));
    expect(after.fingerprint256).not.toBe(before.fingerprint256);
    // And requests still work over the new certificate.
    const fresh = new Agent({ connect: { ca: ca.cert } });
    try {
      const res = await request(`${gw.url}/after-rotation`, { dispatcher: fresh });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    } finally {
      await fresh.close();
    }
  });

  it('keeps the running certificate when the new files are unusable (reload fails, never throws)', async () => {
    const current = (await peerCertificate(gw.port)).fingerprint256;
    const other = await ca.issue({ cn: 'localhost', dns: ['localhost'] });
    const third = await ca.issue({ cn: 'localhost', dns: ['localhost'] });
    const cases: Array<[string, string, string]> = [
      ['garbage key', third.cert, 'not a key'],
      ['key of another certificate', third.cert, other.key],
    ];
    for (const [name, cert, key] of cases) {
      writeFileSync(join(dir, 'gw.crt'), cert);
      writeFileSync(join(dir, 'gw.key'), key);
      // A failed reload resolves false (it never rejects out of a file-watcher or SIGHUP callback).
      await expect(gw.gateway.reload(), name).resolves.toBe(false);
      expect((await peerCertificate(gw.port)).fingerprint256, name).toBe(current);
    }
    expect(gw.logs.filter((l) => l.msg === 'config reload failed; keeping the running config').length).toBeGreaterThanOrEqual(2);
  });
});

describe('HTTPS upstreams', () => {
  it('verifies the upstream against upstream.tls.ca', async () => {
    const res = await request(`${gw.url}/secure-upstream/x`, { dispatcher });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('tls-upstream /secure-upstream/x');
  });

  it('answers 502 for an upstream certificate from another CA than upstream.tls.ca', async () => {
    const res = await request(`${gw.url}/rogue-with-ca`, { dispatcher });
    expect(res.statusCode).toBe(502);
    const body = (await res.body.json()) as { code: string };
    expect(body.code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
  });

  it('answers 502 for an untrusted upstream certificate when no CA is configured (system roots)', async () => {
    const res = await request(`${gw.url}/rogue-system-ca`, { dispatcher });
    expect(res.statusCode).toBe(502);
    const text = await res.body.text();
    expect((JSON.parse(text) as { code: string }).code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    expect(text).not.toMatch(/certificate|CERT|127\.0\.0\.1/);
  });
});

describe('upstream.tls.servername (HTTP and WebSocket)', () => {
  // A backend whose certificate names only backend.internal, reached by IP: only SNI/verification against
  // upstream.tls.servername can make the connection; the URL's IP must never be enough.
  let backends: https.Server[] = [];
  let silent: net.Server;
  const servers: WebSocketServer[] = [];
  const silentSockets = new Set<net.Socket>();
  let sniGw: TestGateway;
  const seen: Array<{ servername: string | false | undefined; url: string | undefined; upgrade: boolean }> = [];

  async function backend(cert: Issued, host: string): Promise<https.Server> {
    const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      seen.push({ servername: (req.socket as tls.TLSSocket).servername, url: req.url, upgrade: false });
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`backend ${req.url}`));
    });
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => {
      seen.push({ servername: (req.socket as tls.TLSSocket).servername, url: req.url, upgrade: true });
      wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(`backend-echo:${m}`)));
    });
    await new Promise<void>((r) => server.listen(0, host, r));
    backends.push(server);
    servers.push(wss);
    return server;
  }

  beforeAll(async () => {
    const cert = await upstreamCa.issue({ cn: 'backend.internal', dns: ['backend.internal'] });
    const v4 = await backend(cert, '127.0.0.1');
    const v6 = await backend(cert, '::1');
    // Accepts TCP, never answers: the WebSocket handshake must time out (upstream.timeout), not hang.
    silent = net.createServer((s) => {
      silentSockets.add(s);
      s.on('close', () => silentSockets.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const sniDir = tempDir('ztgw-sni-');
    writeFileSync(join(sniDir, 'upstream-ca.crt'), upstreamCa.cert);
    sniGw = await startGateway(
      `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
routes:
  - name: sni
    match: { path: /sni }
    upstream: { url: https://127.0.0.1:${portOf(v4)}, timeout: 2s, connect_timeout: 1s, tls: { ca: upstream-ca.crt, servername: backend.internal } }
    public: true
  - name: sni-v6
    match: { path: /v6 }
    upstream: { url: "https://[::1]:${portOf(v6)}", timeout: 2s, connect_timeout: 1s, tls: { ca: upstream-ca.crt, servername: backend.internal } }
    public: true
  - name: no-sni
    match: { path: /no-sni }
    upstream: { url: https://127.0.0.1:${portOf(v4)}, timeout: 2s, connect_timeout: 1s, tls: { ca: upstream-ca.crt } }
    public: true
  - name: silent
    match: { path: /silent }
    upstream: { url: http://127.0.0.1:${(silent.address() as AddressInfo).port}, timeout: 500ms, connect_timeout: 1s }
    public: true
`,
      { dir: sniDir },
    );
  });

  afterAll(async () => {
    await sniGw?.close();
    for (const w of servers) {
      for (const c of w.clients) c.terminate();
      w.close();
    }
    for (const s of silentSockets) s.destroy();
    for (const s of backends) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    backends = [];
    await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()));
  });

  function ws(path: string): Promise<{ opened: boolean; status: number | undefined; echo: string | undefined; body: string }> {
    return new Promise((resolve) => {
      const socket = new WebSocket(`${sniGw.url.replace(/^http/, 'ws')}${path}`, { handshakeTimeout: 5000 });
      socket.once('open', () => {
        socket.once('message', (m) => {
          socket.close();
          resolve({ opened: true, status: 101, echo: String(m), body: '' });
        });
        socket.send('ping');
      });
      socket.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ opened: false, status: res.statusCode, echo: undefined, body }));
      });
      socket.once('error', () => resolve({ opened: false, status: undefined, echo: undefined, body: '' }));
    });
  }

  it('HTTP: reaches https://127.0.0.1 whose certificate names backend.internal, with SNI backend.internal', async () => {
    const before = seen.length;
    const res = await request(`${sniGw.url}/sni/x`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('backend /sni/x');
    expect(seen.slice(before)).toEqual([{ servername: 'backend.internal', url: '/sni/x', upgrade: false }]);
  });

  it('WebSocket: the same upstream, servername used for SNI and the certificate check', async () => {
    const before = seen.length;
    const r = await ws('/sni/socket');
    expect(r).toMatchObject({ opened: true, echo: 'backend-echo:ping' });
    expect(seen.slice(before)).toEqual([{ servername: 'backend.internal', url: '/sni/socket', upgrade: true }]);
  });

  it('HTTP and WebSocket to an IPv6 upstream (https://[::1]:port) with servername', async () => {
    const before = seen.length;
    const res = await request(`${sniGw.url}/v6/x`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('backend /v6/x');
    expect(await ws('/v6/socket')).toMatchObject({ opened: true, echo: 'backend-echo:ping' });
    expect(seen.slice(before).map((x) => [x.servername, x.url, x.upgrade])).toEqual([
      ['backend.internal', '/v6/x', false],
      ['backend.internal', '/v6/socket', true],
    ]);
  });

  it('without servername the certificate does not match 127.0.0.1: HTTP 502 and WebSocket 502, nothing reaches the backend', async () => {
    const before = seen.length;
    const res = await request(`${sniGw.url}/no-sni/x`);
    expect(res.statusCode).toBe(502);
    expect(((await res.body.json()) as { code: string }).code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    const r = await ws('/no-sni/socket');
    expect(r.opened).toBe(false);
    expect(r.status).toBe(502);
    expect((JSON.parse(r.body) as { code: string }).code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    expect(seen.slice(before)).toEqual([]);
  });

  it('WebSocket: an upstream that never answers the handshake gets 504 after upstream.timeout', async () => {
    const r = await ws('/silent/socket');
    expect(r.opened).toBe(false);
    expect(r.status).toBe(504);
    expect((JSON.parse(r.body) as { code: string }).code).toBe('GW_ERR_UPSTREAM_TIMEOUT');
  });
});
