// TLS on both sides: the HTTPS listener (minimum version, plain HTTP refused, redirect listener, certificate
// rotation on reload) and HTTPS upstreams verified against a configured CA (never without verification).
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { createCA, type CertificateAuthority, type Issued } from '../../tools/pki.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/streams.ts';

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
    expect(gw.gateway.reload()).toBe(true);
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
      let ok: boolean | undefined;
      expect(() => (ok = gw.gateway.reload()), name).not.toThrow();
      expect(ok, name).toBe(false);
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
