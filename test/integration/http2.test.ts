// HTTP/2 on the TLS listener (ALPN h2 with http/1.1 fallback) and h2c on a plain one: the same pipeline
// and the same answers as over HTTP/1.1, the same headers at the upstream, the HTTP/2-only refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http2 from 'node:http2';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import { createCA, type CertificateAuthority, type Issued } from '../../tools/pki.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { headerNames, startUpstream, type Upstream } from '../helpers/upstream.ts';
import { h2Connect, h2Outcome, h2Request, withH2Session } from '../helpers/h2.ts';
import { rawRequest } from '../helpers/raw.ts';

let ca: CertificateAuthority;
let cert: Issued;
let upstream: Upstream;
let gw: TestGateway;
let h2cGw: TestGateway;
let dispatcher: Agent;

beforeAll(async () => {
  ca = await createCA('h2 test CA');
  cert = await ca.issue({ cn: 'localhost', dns: ['localhost', 'app.test'], ips: ['127.0.0.1'] });
  upstream = await startUpstream();
  const routes = `routes:
  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`;
  gw = await startGateway(`listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
shutdown: { drain_timeout: 1s }
${routes}`, { dir: tempDir('ztgw-h2-'), files: { 'gw.crt': cert.cert, 'gw.key': cert.key } });
  h2cGw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true, h2c: true }
shutdown: { drain_timeout: 1s }
${routes}`);
  dispatcher = new Agent({ connect: { ca: ca.cert } });
});

afterAll(async () => {
  await dispatcher?.close();
  await gw?.close();
  await h2cGw?.close();
  await upstream?.close();
});

describe('ALPN', () => {
  it('offers h2 first and http/1.1 as the fallback', async () => {
    for (const [offered, chosen] of [[['h2', 'http/1.1'], 'h2'], [['http/1.1'], 'http/1.1']] as const) {
      const proto = await new Promise<string | false>((resolve, reject) => {
        const s = tls.connect({ port: gw.port, host: '127.0.0.1', servername: 'localhost', ca: ca.cert, ALPNProtocols: [...offered] }, () => {
          resolve(s.alpnProtocol ?? false);
          s.destroy();
        });
        s.once('error', reject);
      });
      expect(proto).toBe(chosen);
    }
  });

  it('listen.http2: false offers no h2 (HTTP/1.1 only, as before)', async () => {
    const h1only = await startGateway(`listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
  http2: false
routes:
  - { name: app, match: { path: / }, upstream: { url: ${upstream.url} }, public: true }
`, { dir: tempDir('ztgw-h1only-'), files: { 'gw.crt': cert.cert, 'gw.key': cert.key } });
    try {
      const proto = await new Promise<string | false>((resolve, reject) => {
        const s = tls.connect({ port: h1only.port, host: '127.0.0.1', servername: 'localhost', ca: ca.cert, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
          resolve(s.alpnProtocol ?? false);
          s.destroy();
        });
        s.once('error', reject);
      });
      expect(proto).not.toBe('h2');
      const res = await request(`${h1only.url}/x`, { dispatcher });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    } finally {
      await h1only.close();
    }
  });

  it('never advertises SETTINGS_ENABLE_CONNECT_PROTOCOL; caps concurrent streams and the header list', async () => {
    const session = http2.connect(gw.url, { ca: ca.cert, servername: 'localhost' });
    try {
      const settings = await new Promise<http2.Settings>((r) => session.once('remoteSettings', r));
      expect(settings.enableConnectProtocol).toBe(false);
      expect(settings.maxConcurrentStreams).toBe(100);
      expect(settings.maxHeaderListSize).toBe(16_384);
    } finally {
      session.close();
    }
  });
});

describe('the same pipeline over HTTP/2', () => {
  it('forwards a GET: the upstream sees HTTP/1.1 with Host from :authority, no pseudo-header', async () => {
    upstream.reset();
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const res = await h2Request(session, { ':method': 'GET', ':path': '/hello?x=1', ':authority': `localhost:${gw.port}`, cookie: 'a=1', 'x-custom': 'v' }, undefined);
      expect(res.status).toBe(200);
      expect(res.headers.server).toBeUndefined();
      expect(res.headers['x-powered-by']).toBeUndefined();
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const rec = upstream.received.at(-1)!;
      expect(rec.url).toBe('/hello?x=1');
      expect(rec.headers['x-forwarded-host']).toBe(`localhost:${gw.port}`);
      expect(rec.headers['x-forwarded-proto']).toBe('https');
      expect(rec.headers['x-custom']).toBe('v');
      expect(headerNames(rec).some((n) => n.startsWith(':'))).toBe(false);
      await new Promise((r) => setTimeout(r, 30));
      const line = gw.logs.filter((l) => l.msg === 'request' && l.path === '/hello').at(-1);
      expect(line?.protocol).toBe('h2');
      expect(line?.status).toBe(200);
    });
  });

  it('joins split cookie fields into one Cookie line (RFC 9113 §8.2.3)', async () => {
    upstream.reset();
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      // node's client sends an array of cookies as separate fields
      const res = await h2Request(session, { ':path': '/c', ':authority': `localhost:${gw.port}`, cookie: ['a=1', 'b=2'] });
      expect(res.status).toBe(200);
      const rec = upstream.received.at(-1)!;
      expect(headerNames(rec).filter((n) => n === 'cookie')).toHaveLength(1);
      expect(rec.headers.cookie).toBe('a=1; b=2');
    });
  });

  it('relays a request body without Content-Length (DATA frames) intact, chunked to the upstream', async () => {
    upstream.reset();
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const body = 'x'.repeat(100_000);
      const res = await h2Request(session, { ':method': 'POST', ':path': '/upload', ':authority': `localhost:${gw.port}`, 'content-type': 'text/plain' }, body);
      expect(res.status).toBe(200);
      const rec = upstream.received.at(-1)!;
      expect(rec.bodyBytes).toBe(100_000);
      expect(rec.headers['transfer-encoding']).toBe('chunked');
    });
  });

  it('answers the gateway\'s own refusals as problem JSON over h2 (no connection-specific header)', async () => {
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const res = await h2Request(session, { ':path': '/a/%2e%2e/b', ':authority': `localhost:${gw.port}` });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(res.headers.connection).toBeUndefined();
    });
  });

  it('HTTP/1.1 on the same listener is unchanged', async () => {
    upstream.reset();
    const h1Only = new Agent({ connect: { ca: ca.cert }, allowH2: false });
    const res = await request(`${gw.url}/h1`, { dispatcher: h1Only });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(upstream.received.at(-1)!.headers['x-forwarded-host']).toBe(`127.0.0.1:${gw.port}`);
    await new Promise((r) => setTimeout(r, 30));
    expect(gw.logs.filter((l) => l.msg === 'request' && l.path === '/h1').at(-1)).not.toHaveProperty('protocol');
    await h1Only.close();
  });
});

describe('h2c (prior knowledge) on a plain listener that enables it', () => {
  it('serves h2c and HTTP/1.1 on the same port', async () => {
    upstream.reset();
    await withH2Session(h2cGw.url, {}, async (session) => {
      const res = await h2Request(session, { ':path': '/h2c', ':authority': `127.0.0.1:${h2cGw.port}` });
      expect(res.status).toBe(200);
      expect(upstream.received.at(-1)!.url).toBe('/h2c');
    });
    const h1 = await request(`${h2cGw.url}/h1`);
    expect(h1.statusCode).toBe(200);
    await h1.body.text();
  });

  it('a request line that is not the HTTP/2 preface (PRI * HTTP/2.0 spelled differently) stays with HTTP/1.1: 505', async () => {
    const res = await rawRequest(h2cGw.port, 'PRI * HTTP/2.0\r\nHost: x\r\n\r\n');
    expect(res.status).toBe(505);
  });
});

describe('421 for an :authority the certificate does not cover', () => {
  it('refuses it before the pipeline; a covered name on the same connection passes', async () => {
    upstream.reset();
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const other = await h2Request(session, { ':path': '/x', ':authority': 'other.example' });
      expect(other.status).toBe(421);
      expect(JSON.parse(other.body).code).toBe('GW_ERR_MISDIRECTED');
      expect(upstream.received).toHaveLength(0);
      const ok = await h2Request(session, { ':path': '/y', ':authority': 'app.test' });
      expect(ok.status).toBe(200);
    });
  });
});

describe('421 with SNI certificates (listen.tls.certificates)', () => {
  it('judges :authority by the certificate the connection was given for its SNI name', async () => {
    const other = await ca.issue({ cn: 'b.test', dns: ['b.test'] });
    const sni = await startGateway(`listen:
  address: 127.0.0.1:0
  tls:
    cert: gw.crt
    key: gw.key
    certificates: [{ hosts: [b.test], cert: b.crt, key: b.key }]
routes:
  - { name: app, match: { path: / }, upstream: { url: ${upstream.url} }, public: true }
`, { dir: tempDir('ztgw-h2sni-'), files: { 'gw.crt': cert.cert, 'gw.key': cert.key, 'b.crt': other.cert, 'b.key': other.key } });
    try {
      const b = await h2Connect(sni.url, { ca: ca.cert, servername: 'b.test' });
      try {
        expect((await h2Request(b, { ':path': '/1', ':authority': 'b.test' })).status).toBe(200);
        // The default certificate covers localhost, but this connection was given b.test's: a coalesced request.
        expect((await h2Request(b, { ':path': '/2', ':authority': 'localhost' })).status).toBe(421);
      } finally {
        b.close();
      }
      const d = await h2Connect(sni.url, { ca: ca.cert, servername: 'localhost' });
      try {
        expect((await h2Request(d, { ':path': '/3', ':authority': 'localhost' })).status).toBe(200);
        expect((await h2Request(d, { ':path': '/4', ':authority': 'b.test' })).status).toBe(421);
      } finally {
        d.close();
      }
    } finally {
      await sni.close();
    }
  });
});

describe('HTTP/2 refusals', () => {
  it(':authority and host that disagree: 400, nothing forwarded', async () => {
    upstream.reset();
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const res = await h2Request(session, { ':path': '/x', ':authority': 'localhost', host: 'app.test' });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).code).toBe('GW_ERR_BAD_HOST');
      expect(upstream.received).toHaveLength(0);
    });
  });

  it('CONNECT: refused, nothing forwarded', async () => {
    upstream.reset();
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const out = await h2Outcome(session, { ':method': 'CONNECT', ':authority': 'localhost:443' });
      expect(out.status ?? 0).toBe(400);
      expect(upstream.received).toHaveLength(0);
    });
  });
});

describe('upstream: { http2: true }', () => {
  it('h2c with prior knowledge on http://, and h2 over TLS on https://; HTTP/1.1 stays the default', async () => {
    const seen: Array<{ version: string; path: string; authority: string | undefined; body: number }> = [];
    const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
      let body = 0;
      req.on('data', (c: Buffer) => (body += c.length));
      req.on('end', () => {
        seen.push({ version: req.httpVersion, path: req.url, authority: req.authority, body });
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`h2 upstream ${req.httpVersion}`);
      });
    };
    const h2c = http2.createServer(handler);
    const upCert = await ca.issue({ cn: '127.0.0.1', ips: ['127.0.0.1'] });
    const h2s = http2.createSecureServer({ cert: upCert.cert, key: upCert.key, allowHTTP1: true }, handler);
    await Promise.all([h2c, h2s].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    const port = (s: http2.Http2Server | http2.Http2SecureServer) => (s.address() as { port: number }).port;
    const local = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
routes:
  - name: h2c
    match: { path: /h2c }
    upstream: { url: http://127.0.0.1:${port(h2c)}, http2: true, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: h1s
    match: { path: /h1s }
    upstream: { url: https://127.0.0.1:${port(h2s)}, tls: { ca: ca.crt }, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: h2s
    match: { path: /h2s }
    upstream: { url: https://127.0.0.1:${port(h2s)}, http2: true, tls: { ca: ca.crt }, timeout: 2s, connect_timeout: 1s }
    public: true
`, { files: { 'ca.crt': ca.cert } });
    try {
      for (const path of ['/h2c/a', '/h2s/b']) {
        const res = await request(`${local.url}${path}`, { method: 'POST', body: 'hello' });
        expect(res.statusCode).toBe(200);
        expect(await res.body.text()).toBe('h2 upstream 2.0');
      }
      expect(seen).toEqual([
        { version: '2.0', path: '/h2c/a', authority: `127.0.0.1:${port(h2c)}`, body: 5 },
        { version: '2.0', path: '/h2s/b', authority: `127.0.0.1:${port(h2s)}`, body: 5 },
      ]);
      // Without upstream.http2 an upstream that offers h2 by ALPN is still spoken to in HTTP/1.1.
      const h1res = await request(`${local.url}/h1s/c`);
      expect(h1res.statusCode).toBe(200);
      expect(await h1res.body.text()).toBe('h2 upstream 1.1');
      expect(seen.at(-1)?.version).toBe('1.1');
    } finally {
      await local.close();
      for (const s of [h2c, h2s]) await new Promise<void>((r) => s.close(() => r()));
    }
  });
});

describe('shutdown with HTTP/2 sessions', () => {
  it('an in-flight h2 request finishes, idle sessions get GOAWAY, stop() returns promptly', async () => {
    const slow = await startUpstream((_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('late'), 300);
      return true;
    });
    const local = await startGateway(`listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
shutdown: { drain_timeout: 2s }
routes:
  - name: app
    match: { path: / }
    upstream: { url: ${slow.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`, { dir: tempDir('ztgw-h2s-'), files: { 'gw.crt': cert.cert, 'gw.key': cert.key } });
    try {
      const busy = await h2Connect(local.url, { ca: ca.cert, servername: 'localhost' });
      const idle = await h2Connect(local.url, { ca: ca.cert, servername: 'localhost' });
      const idleGoaway = new Promise<number>((r) => idle.once('goaway', (code: number) => r(code)));
      const inFlight = h2Request(busy, { ':path': '/slow', ':authority': `localhost:${local.port}` });
      await new Promise((r) => setTimeout(r, 50));
      const started = Date.now();
      await local.close();
      expect(Date.now() - started).toBeLessThan(1500);
      expect(await idleGoaway).toBe(0);
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(res.body).toBe('late');
      busy.destroy();
      idle.destroy();
    } finally {
      await slow.close();
    }
  });
});
