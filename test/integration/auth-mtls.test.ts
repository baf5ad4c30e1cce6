// mTLS / SPIFFE authentication and upstream mTLS, against a real gateway, real upstreams and real certificates.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { createCA, type CertificateAuthority, type Issued } from '../../tools/pki.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { waitFor } from '../helpers/wait.ts';
import { headerNames, startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';

const BILLING = 'spiffe://example.org/ns/prod/sa/billing';

let ca: CertificateAuthority;
let rogueCa: CertificateAuthority;
let server: Issued;
const clients: Record<string, Issued> = {};
let upstream: Upstream;
const agents: Agent[] = [];

/** An HTTPS client that verifies the gateway (test CA, servername localhost) and optionally presents a cert. */
function agent(client?: Issued): Agent {
  const a = new Agent({
    connect: { ca: ca.cert, servername: 'localhost', ...(client ? { cert: client.cert, key: client.key } : {}) },
  });
  agents.push(a);
  return a;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  received: Received | undefined;
}

/** One request; `received` is what the upstream got for it (undefined when nothing was forwarded). */
async function call(gw: TestGateway, path: string, client: Agent, headers: Record<string, string> = {}): Promise<Answer> {
  const before = upstream.received.length;
  const res = await request(`${gw.url}${path}`, { dispatcher: client, headers });
  const text = await res.body.text();
  const body = res.headers['content-type']?.toString().includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {};
  const received = upstream.received.length > before ? upstream.received.at(-1) : undefined;
  return { status: res.statusCode, headers: res.headers, body, received };
}

function expectUnauthenticated(a: Answer, error: string | null): void {
  expect(a.status).toBe(401);
  expect(a.body.code).toBe('GW_ERR_UNAUTHENTICATED');
  expect(a.received).toBeUndefined();
  const challenge = String(a.headers['www-authenticate']);
  expect(challenge.startsWith('Mutual realm="zt-gateway"')).toBe(true);
  if (error === null) expect(challenge).not.toContain('error=');
  else expect(challenge).toContain(`error="${error}"`);
}

/** The identity headers the upstream received (every header whose name starts with x-zt-). */
function ztHeaders(rec: Received): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < rec.rawHeaders.length; i += 2) {
    const name = (rec.rawHeaders[i] as string).toLowerCase();
    if (name.startsWith('x-zt-')) (out[name] ??= []).push(rec.rawHeaders[i + 1] as string);
  }
  return out;
}

function gatewayYaml(clientAuth: 'optional' | 'require', extraTls = '', extraRoutes = ''): string {
  return `listen:
  address: 127.0.0.1:0
  tls: { cert: server.crt, key: server.key, client_ca: clients-ca.crt, client_auth: ${clientAuth}${extraTls} }
shutdown: { drain_timeout: 1s }
identity_providers:
  mesh: { type: mtls, trust_domain: example.org }
  legacy: { type: mtls }
routes:
  - name: svc
    match: { path: /svc }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [mesh]
    authorize: { allow: [{ authenticated: true }] }
  - name: legacy
    match: { path: /legacy }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [legacy]
    authorize: { allow: [{ authenticated: true }] }
${extraRoutes}`;
}

const pemBody = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');

/** A CRL from `issuer` that revokes `revoked` (made with @peculiar/x509; tools/pki.ts has no CRL support). */
async function makeCrl(issuer: CertificateAuthority, revoked: Issued): Promise<string> {
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pemBody(issuer.key), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const caCert = new x509.X509Certificate(issuer.cert);
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subject,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + 86_400_000),
    entries: [{ serialNumber: new x509.X509Certificate(revoked.cert).serialNumber, revocationDate: new Date(Date.now() - 60_000), reason: x509.X509CrlReason.keyCompromise }],
    signingKey: signingKey as CryptoKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(caCert, false)],
  });
  // OpenSSL wants the 'X509 CRL' PEM label (the library writes 'CRL').
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
}

/** A client certificate with names tools/pki.ts cannot express (e.g. a NUL inside the CN or a URI). */
async function issueRaw(issuer: CertificateAuthority, cn: string, uris: string[]): Promise<Issued> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pemBody(issuer.key), alg, false, ['sign']);
  const leaf = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `1${Buffer.from(webcrypto.getRandomValues(new Uint8Array(15))).toString('hex')}`,
    subject: [{ CN: [cn] }],
    issuer: new x509.X509Certificate(issuer.cert).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingKey: signingKey as CryptoKey,
    publicKey: leaf.publicKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      ...(uris.length ? [new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })))] : []),
    ],
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leaf.privateKey));
  return { cert: cert.toString('pem'), key: x509.PemConverter.encode(der, 'PRIVATE KEY') };
}

/** Raw TLS: did the handshake complete, and did any HTTP bytes come back for a request? */
function rawTls(gw: TestGateway, client: Issued | undefined, maxVersion: 'TLSv1.2' | 'TLSv1.3') {
  return new Promise<{ handshake: boolean; data: string; error: string | undefined }>((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: gw.port,
      ca: ca.cert,
      servername: 'localhost',
      maxVersion,
      ...(client ? { cert: client.cert, key: client.key } : {}),
    });
    let handshake = false;
    let data = '';
    let error: string | undefined;
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.on('secureConnect', () => {
      handshake = true;
      socket.write('GET /svc/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ handshake, data, error });
    });
  });
}

/**
 * The TLS layer must refuse the client: an HTTP client's request fails, the upstream sees nothing, a TLS 1.2
 * handshake never completes, and under TLS 1.3 (where the server's verdict comes after the client's Finished)
 * not one HTTP byte comes back.
 */
async function expectHandshakeRefused(gw: TestGateway, client: Issued | undefined): Promise<void> {
  const before = upstream.received.length;
  const err = await request(`${gw.url}/svc/x`, { dispatcher: agent(client) }).then(
    async (res) => {
      await res.body.text();
      throw new Error(`expected the handshake to fail, got HTTP ${res.statusCode}`);
    },
    (e: unknown) => e as NodeJS.ErrnoException,
  );
  expect(String(err.code), String(err.message)).toMatch(/^(ERR_SSL_|ECONNRESET$|EPIPE$|UND_ERR_SOCKET$)/);
  const v12 = await rawTls(gw, client, 'TLSv1.2');
  expect(v12.handshake).toBe(false);
  expect(v12.error).toMatch(/^(ERR_SSL_|ECONNRESET$)/);
  const v13 = await rawTls(gw, client, 'TLSv1.3');
  expect(v13.data).toBe('');
  expect(upstream.received.length).toBe(before);
}

let gwOptional: TestGateway;
let gwRequire: TestGateway;
let gwCrl: TestGateway;
let mtlsUpstream: https.Server;
const mtlsUpstreamSeen: Array<{ cn: unknown; authorized: boolean; headers: Record<string, unknown> }> = [];

beforeAll(async () => {
  [ca, rogueCa] = await Promise.all([createCA('zt test CA'), createCA('rogue CA')]);
  server = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const issue = async (name: string, opts: Parameters<CertificateAuthority['issue']>[0], by = ca) => {
    clients[name] = await by.issue(opts);
  };
  await Promise.all([
    issue('billing', { cn: 'billing', uris: [BILLING], client: true }),
    issue('rogueBilling', { cn: 'billing', uris: [BILLING], client: true }, rogueCa),
    issue('otherDomain', { cn: 'billing', uris: ['spiffe://evil.org/ns/prod/sa/billing'], client: true }),
    issue('twoSpiffe', { cn: 'billing', uris: [BILLING, 'spiffe://example.org/ns/prod/sa/admin'], client: true }),
    issue('dotSegments', { cn: 'billing', uris: ['spiffe://example.org/ns/prod/../../admin'], client: true }),
    issue('plainCn', { cn: 'legacy-batch', client: true }),
    issue('plainCnWithHttpsUri', { cn: 'legacy-batch', uris: ['https://batch.example.org/'], client: true }),
    issue('serverOnly', { cn: 'billing', uris: [BILLING], client: false }),
    issue('expired', { cn: 'billing', uris: [BILLING], client: true, days: -1 }),
    issue('revoked', { cn: 'revoked', uris: ['spiffe://example.org/ns/prod/sa/revoked'], client: true }),
    issue('gatewayClient', { cn: 'zt-gateway-client', client: true }),
    issue('upstreamServer', { cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] }),
  ]);
  clients.nulCn = await issueRaw(ca, 'legacy-batch\u0000.example.org', []);
  clients.nulSpiffe = await issueRaw(ca, 'billing', ['spiffe://example.org/ns/prod/sa/billing\u0000admin']);
  clients.percentSpiffe = await issueRaw(ca, 'billing', ['spiffe://example.org/ns/prod/sa/%62illing']);
  clients.upperScheme = await issueRaw(ca, 'billing', ['SPIFFE://example.org/ns/prod/sa/billing']);
  upstream = await startUpstream();

  // An HTTPS upstream that insists on a client certificate from the test CA.
  const up = clients.upstreamServer as Issued;
  mtlsUpstream = https.createServer({ cert: up.cert, key: up.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const socket = req.socket as TLSSocket;
    mtlsUpstreamSeen.push({ cn: socket.getPeerCertificate().subject?.CN, authorized: socket.authorized, headers: req.headers });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('secure hello'));
  });
  await new Promise<void>((r) => mtlsUpstream.listen(0, '127.0.0.1', r));
  const upPort = (mtlsUpstream.address() as AddressInfo).port;

  const baseFiles = { 'server.crt': server.cert, 'server.key': server.key, 'clients-ca.crt': ca.cert };
  const upstreamRoutes = `  - name: up-mtls
    match: { path: /up-mtls }
    upstream: { url: https://127.0.0.1:${upPort}, timeout: 2s, connect_timeout: 1s, tls: { ca: upstream-ca.crt, cert: gw-client.crt, key: gw-client.key, servername: localhost } }
    public: true
  - name: up-nocert
    match: { path: /up-nocert }
    upstream: { url: https://127.0.0.1:${upPort}, timeout: 2s, connect_timeout: 1s, tls: { ca: upstream-ca.crt, servername: localhost } }
    public: true
  - name: up-wrong-ca
    match: { path: /up-wrong-ca }
    upstream: { url: https://127.0.0.1:${upPort}, timeout: 2s, connect_timeout: 1s, tls: { ca: rogue-ca.crt, cert: gw-client.crt, key: gw-client.key, servername: localhost } }
    public: true
`;
  const gwClient = clients.gatewayClient as Issued;
  [gwOptional, gwRequire, gwCrl] = await Promise.all([
    startGateway(gatewayYaml('optional', '', upstreamRoutes), {
      files: { ...baseFiles, 'upstream-ca.crt': ca.cert, 'rogue-ca.crt': rogueCa.cert, 'gw-client.crt': gwClient.cert, 'gw-client.key': gwClient.key },
    }),
    startGateway(gatewayYaml('require'), { files: baseFiles }),
    startGateway(gatewayYaml('optional', ', crl: clients.crl'), {
      files: { ...baseFiles, 'clients.crl': await makeCrl(ca, clients.revoked as Issued) },
    }),
  ]);
});

afterAll(async () => {
  await Promise.allSettled(agents.map((a) => a.close()));
  await Promise.allSettled([gwOptional?.close(), gwRequire?.close(), gwCrl?.close()]);
  await upstream?.close();
  mtlsUpstream?.closeAllConnections();
  await new Promise<void>((r) => (mtlsUpstream ? mtlsUpstream.close(() => r()) : r()));
});

describe('mTLS with client_auth: optional', () => {
  it('a good client certificate with one SPIFFE ID authenticates; the upstream gets the verified identity', async () => {
    const a = await call(gwOptional, '/svc/invoices', agent(clients.billing), {
      'x-zt-user': 'admin',
      'X-ZT-Spiffe-Id': 'spiffe://example.org/ns/prod/sa/admin',
    });
    expect(a.status).toBe(200);
    const zt = ztHeaders(a.received!);
    expect(zt['x-zt-user']).toEqual([BILLING]);
    expect(zt['x-zt-spiffe-id']).toEqual([BILLING]);
    expect(zt['x-zt-auth-method']).toEqual(['mtls']);
    expect(zt['x-zt-email']).toBeUndefined();
    expect(zt['x-zt-groups']).toBeUndefined();
    expect(zt['x-zt-assertion']).toHaveLength(1);
    expect(a.received!.url).toBe('/svc/invoices');
  });

  it('keeps the identity for further requests on the same connection', async () => {
    const client = agent(clients.billing);
    for (let i = 0; i < 3; i++) {
      const a = await call(gwOptional, `/svc/${i}`, client);
      expect(a.status).toBe(200);
      expect(ztHeaders(a.received!)['x-zt-user']).toEqual([BILLING]);
    }
  });

  it('a certificate from an untrusted CA is refused with 401 (the handshake is allowed, the cert does not count)', async () => {
    expectUnauthenticated(await call(gwOptional, '/svc/x', agent(clients.rogueBilling)), 'invalid_client');
  });

  it('a certificate outside the trust domain is refused', async () => {
    const a = await call(gwOptional, '/svc/x', agent(clients.otherDomain));
    expectUnauthenticated(a, 'invalid_client');
    expect(a.body.detail).toMatch(/trust domain/);
  });

  it('a certificate with two SPIFFE IDs is refused', async () => {
    const a = await call(gwOptional, '/svc/x', agent(clients.twoSpiffe));
    expectUnauthenticated(a, 'invalid_client');
    expect(a.body.detail).toMatch(/more than one SPIFFE ID/);
  });

  it('a SPIFFE ID with dot segments is refused as malformed', async () => {
    const a = await call(gwOptional, '/svc/x', agent(clients.dotSegments));
    expectUnauthenticated(a, 'invalid_client');
    expect(a.body.detail).toMatch(/malformed/);
  });

  it('SPIFFE IDs that are not in the standard form are refused (percent-encoding, upper-case scheme)', async () => {
    for (const name of ['percentSpiffe', 'upperScheme']) {
      const a = await call(gwOptional, '/svc/x', agent(clients[name]));
      expectUnauthenticated(a, 'invalid_client');
      expect(a.body.detail, name).toMatch(/malformed/);
    }
  });

  it('a NUL inside a SPIFFE URI or inside the subject CN is refused', async () => {
    const spiffe = await call(gwOptional, '/svc/x', agent(clients.nulSpiffe));
    expectUnauthenticated(spiffe, 'invalid_client');
    expect(spiffe.body.detail).toMatch(/NUL/);
    const cn = await call(gwOptional, '/legacy/x', agent(clients.nulCn));
    expectUnauthenticated(cn, 'invalid_client');
    expect(cn.body.detail).toMatch(/NUL/);
  });

  it('a certificate without a SPIFFE ID is refused when the provider has a trust_domain', async () => {
    const a = await call(gwOptional, '/svc/x', agent(clients.plainCn));
    expectUnauthenticated(a, 'invalid_client');
    expect(a.body.detail).toMatch(/no SPIFFE ID/);
  });

  it('a server-only certificate (EKU serverAuth) is not accepted as a client certificate', async () => {
    expectUnauthenticated(await call(gwOptional, '/svc/x', agent(clients.serverOnly)), 'invalid_client');
  });

  it('an expired client certificate is refused', async () => {
    expectUnauthenticated(await call(gwOptional, '/svc/x', agent(clients.expired)), 'invalid_client');
  });

  it('no certificate on an mTLS-only route → 401 with a plain challenge', async () => {
    expectUnauthenticated(await call(gwOptional, '/svc/x', agent()), null);
  });

  it('without trust_domain, the subject CN identifies a certificate that has no SPIFFE ID', async () => {
    for (const name of ['plainCn', 'plainCnWithHttpsUri']) {
      const a = await call(gwOptional, '/legacy/run', agent(clients[name]), { 'X-ZT-User': 'admin' });
      expect(a.status, name).toBe(200);
      const zt = ztHeaders(a.received!);
      expect(zt['x-zt-user']).toEqual(['legacy-batch']);
      expect(zt['x-zt-auth-method']).toEqual(['mtls']);
      expect(zt['x-zt-spiffe-id']).toBeUndefined();
    }
  });

  it('without trust_domain, a SPIFFE ID still wins over the CN', async () => {
    const a = await call(gwOptional, '/legacy/run', agent(clients.billing));
    expect(a.status).toBe(200);
    expect(ztHeaders(a.received!)['x-zt-user']).toEqual([BILLING]);
    expect(ztHeaders(a.received!)['x-zt-spiffe-id']).toEqual([BILLING]);
  });
});

describe('mTLS with client_auth: require', () => {
  it('a good certificate passes the handshake and authenticates', async () => {
    const a = await call(gwRequire, '/svc/x', agent(clients.billing));
    expect(a.status).toBe(200);
    expect(ztHeaders(a.received!)['x-zt-spiffe-id']).toEqual([BILLING]);
    // The raw probes used for the refusals below do succeed with a good certificate (TLS 1.2 and 1.3).
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const raw = await rawTls(gwRequire, clients.billing, version);
      expect(raw.handshake, version).toBe(true);
      expect(raw.data, version).toMatch(/^HTTP\/1\.1 200 /);
    }
  });

  it('no certificate: the handshake is refused', async () => {
    await expectHandshakeRefused(gwRequire, undefined);
  });

  it('a certificate from an untrusted CA: the handshake is refused', async () => {
    await expectHandshakeRefused(gwRequire, clients.rogueBilling);
  });

  it('the gateway keeps serving after refused handshakes', async () => {
    expect((await call(gwRequire, '/svc/y', agent(clients.billing))).status).toBe(200);
  });
});

describe('mTLS with a CRL', () => {
  it('a revoked certificate is refused with 401', async () => {
    const a = await call(gwCrl, '/svc/x', agent(clients.revoked));
    expectUnauthenticated(a, 'invalid_client');
  });

  it('a certificate that is not on the CRL still authenticates', async () => {
    const a = await call(gwCrl, '/svc/x', agent(clients.billing));
    expect(a.status).toBe(200);
    expect(ztHeaders(a.received!)['x-zt-user']).toEqual([BILLING]);
  });

  it('the revoked certificate is fine on a gateway without the CRL (the CRL is what refuses it)', async () => {
    const a = await call(gwOptional, '/svc/x', agent(clients.revoked));
    expect(a.status).toBe(200);
    expect(ztHeaders(a.received!)['x-zt-user']).toEqual(['spiffe://example.org/ns/prod/sa/revoked']);
  });
});

describe('forward-auth behind a proxy that presents a client certificate', () => {
  it("never lends the proxy's certificate to the request it asks about: 401, no identity headers", async () => {
    const gw = await startGateway(`${gatewayYaml('optional')}trusted_proxies: [127.0.0.1/32]\n`, { files: { 'server.crt': server.cert, 'server.key': server.key, 'clients-ca.crt': ca.cert } });
    try {
      const proxy = agent(clients.billing); // the proxy's own certificate, trusted and in the trust domain
      const ask = { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'localhost', 'x-forwarded-uri': '/svc/data' };
      const r = await call(gw, '/.zt/verify', proxy, ask);
      expect(r.status).toBe(401);
      expect(r.body.code).toBe('GW_ERR_UNAUTHENTICATED');
      expect(r.headers['x-zt-user']).toBeUndefined();
      expect(r.headers['x-zt-spiffe-id']).toBeUndefined();
      // The same certificate on a direct request is the caller's own: it authenticates.
      expect((await call(gw, '/svc/data', proxy)).status).toBe(200);
    } finally {
      await gw.close();
    }
  });
});

describe('upstream mTLS', () => {
  it('upstream.tls with cert and key: the gateway presents its client certificate and verifies the upstream', async () => {
    const before = mtlsUpstreamSeen.length;
    const res = await request(`${gwOptional.url}/up-mtls/x`, { dispatcher: agent() });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('secure hello');
    expect(mtlsUpstreamSeen.length).toBe(before + 1);
    const seen = mtlsUpstreamSeen.at(-1)!;
    expect(seen.authorized).toBe(true);
    expect(seen.cn).toBe('zt-gateway-client');
    expect(seen.headers.host).toBe(`127.0.0.1:${(mtlsUpstream.address() as AddressInfo).port}`);
  });

  it('upstream.tls without a client certificate → 502, the upstream never answers a request', async () => {
    const before = mtlsUpstreamSeen.length;
    const res = await request(`${gwOptional.url}/up-nocert/x`, { dispatcher: agent() });
    const body = (await res.body.json()) as Record<string, unknown>;
    expect(res.statusCode).toBe(502);
    expect(body.code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    expect(JSON.stringify(body)).not.toContain('127.0.0.1');
    expect(mtlsUpstreamSeen.length).toBe(before);
  });

  it('an upstream whose certificate does not chain to upstream.tls.ca → 502', async () => {
    const before = mtlsUpstreamSeen.length;
    const res = await request(`${gwOptional.url}/up-wrong-ca/x`, { dispatcher: agent() });
    const body = (await res.body.json()) as Record<string, unknown>;
    expect(res.statusCode).toBe(502);
    expect(body.code).toBe('GW_ERR_UPSTREAM_UNAVAILABLE');
    expect(mtlsUpstreamSeen.length).toBe(before);
  });
});

describe('headers the upstream sees on an mTLS route', () => {
  it('no client certificate material or credentials leak into upstream headers', async () => {
    const a = await call(gwOptional, '/svc/z', agent(clients.billing));
    expect(a.status).toBe(200);
    const names = headerNames(a.received!);
    expect(names.filter((n) => n.startsWith('x-zt-')).sort()).toEqual(['x-zt-assertion', 'x-zt-auth-method', 'x-zt-spiffe-id', 'x-zt-user']);
    expect(names.some((n) => /cert|ssl-client/.test(n))).toBe(false);
  });
});

/** One keep-alive TLS connection under the test's control (raw HTTP/1.1, one request at a time). */
interface KeepAlive {
  send(path: string): Promise<{ status: number; head: string }>;
  closed: Promise<void>;
  isClosed(): boolean;
  destroy(): void;
}

function keepAlive(socket: tls.TLSSocket, ready: Promise<void>): KeepAlive {
  let buffer = '';
  let waiting: ((text: string) => void) | null = null;
  let closed = false;
  const closedP = new Promise<void>((r) => socket.once('close', () => ((closed = true), r())));
  socket.on('error', () => undefined);
  socket.on('data', (d: Buffer) => {
    buffer += d.toString('latin1');
    const end = buffer.indexOf('\r\n\r\n');
    if (end < 0 || waiting === null) return;
    const head = buffer.slice(0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (buffer.length < end + 4 + length) return;
    buffer = buffer.slice(end + 4 + length);
    const w = waiting;
    waiting = null;
    w(head);
  });
  return {
    async send(path) {
      await ready;
      const head = await new Promise<string>((resolve, reject) => {
        waiting = resolve;
        socket.once('close', () => reject(new Error('connection closed before the answer')));
        socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      });
      return { status: Number(head.split(' ')[1]), head: head.toLowerCase() };
    },
    closed: closedP,
    isClosed: () => closed,
    destroy: () => socket.destroy(),
  };
}

function connectKeepAlive(gw: TestGateway, client: Issued): KeepAlive {
  const socket = tls.connect({ host: '127.0.0.1', port: gw.port, ca: ca.cert, servername: 'localhost', cert: client.cert, key: client.key });
  return keepAlive(socket, new Promise((r) => socket.once('secureConnect', () => r())));
}

describe('reloading the listener\'s client authentication', () => {
  const files = () => ({ 'server.crt': server.cert, 'server.key': server.key, 'clients-ca.crt': ca.cert });
  let crl: string;
  let held: Upstream;
  let release: () => void = () => undefined;
  beforeAll(async () => {
    crl = await makeCrl(ca, clients.revoked as Issued);
    held = await startUpstream((req, res) => {
      if (!req.url?.startsWith('/svc/hold')) return false;
      release = () => res.writeHead(200, { 'content-length': '4' }).end('done');
      return true;
    });
  });
  afterAll(async () => {
    await held?.close();
  });
  const yaml = (clientAuth: 'optional' | 'require', extraTls = '') => gatewayYaml(clientAuth, extraTls).replaceAll(upstream.url, held.url);

  function refusal(gw: TestGateway) {
    return gw.logs.find((l) => String(l.msg).startsWith('config reload refused'));
  }

  it.each<['optional' | 'require', 'optional' | 'require']>([
    ['optional', 'require'],
    ['require', 'optional'],
  ])('client_auth %s → %s is refused (needs a restart); the running listener keeps its settings', async (from, to) => {
    const gw = await startGateway(yaml(from), { files: files() });
    try {
      const generation = gw.gateway.runtime.current.generation;
      writeFileSync(gw.configFile, yaml(to));
      expect(await gw.gateway.reload()).toBe(false);
      expect(gw.gateway.runtime.current.generation).toBe(generation);
      expect(refusal(gw)).toMatchObject({ level: 'error', problems: [`listen.tls.client_auth: changed from ${from} to ${to}; this needs a restart`] });
      expect((await call(gw, '/svc/x', agent(clients.billing))).status).toBe(200);
      if (from === 'optional') {
        // Still optional: a client without a certificate completes the handshake and gets a 401 problem.
        expectUnauthenticated(await call(gw, '/svc/x', agent()), null);
      } else {
        await expectHandshakeRefused(gw, undefined);
      }
    } finally {
      await gw.close();
    }
  });

  it.each([
    ['removed', true],
    ['added', false],
  ])('client_ca %s on reload is refused (needs a restart)', async (what, startWithCa) => {
    const withCa = `listen:
  address: 127.0.0.1:0
  tls: { cert: server.crt, key: server.key, client_ca: clients-ca.crt }
routes:
  - name: pub
    match: { path: /pub }
    upstream: { url: ${held.url}, timeout: 2s }
    public: true
`;
    const withoutCa = withCa.replace(', client_ca: clients-ca.crt', '');
    const gw = await startGateway(startWithCa ? withCa : withoutCa, { files: files() });
    try {
      writeFileSync(gw.configFile, startWithCa ? withoutCa : withCa);
      expect(await gw.gateway.reload()).toBe(false);
      expect(refusal(gw)?.problems).toEqual([`listen.tls.client_ca: ${what}; this needs a restart`]);
      expect((await call(gw, '/pub/x', agent())).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('a CRL added on reload: an idle keep-alive connection of the now-revoked certificate is closed, and it no longer authenticates', async () => {
    const gw = await startGateway(yaml('optional'), { files: files() });
    try {
      const revoked = connectKeepAlive(gw, clients.revoked as Issued);
      const good = connectKeepAlive(gw, clients.billing as Issued);
      expect((await revoked.send('/svc/before')).status).toBe(200);
      expect((await good.send('/svc/before')).status).toBe(200);

      writeFileSync(join(gw.dir, 'clients.crl'), crl);
      writeFileSync(gw.configFile, yaml('optional', ', crl: clients.crl'));
      expect(await gw.gateway.reload()).toBe(true);
      await waitFor(() => revoked.isClosed() && good.isClosed());

      const before = held.received.length;
      expectUnauthenticated(await call(gw, '/svc/after', agent(clients.revoked)), 'invalid_client');
      expect(held.received.length).toBe(before);
      expect((await call(gw, '/svc/after', agent(clients.billing))).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('a WebSocket authenticated by a certificate under the old CRL is closed by the reload', async () => {
    const wss = new WebSocketServer({ noServer: true });
    held.server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(`echo:${m}`))));
    const gw = await startGateway(yaml('optional'), { files: files() });
    try {
      const revokedCert = clients.revoked as Issued;
      const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/svc/ws`, { ca: ca.cert, servername: 'localhost', cert: revokedCert.cert, key: revokedCert.key });
      let closed = false;
      ws.on('close', () => (closed = true));
      ws.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      });
      const echoed = new Promise<string>((r) => ws.once('message', (m) => r(String(m))));
      ws.send('hi');
      expect(await echoed).toBe('echo:hi');

      writeFileSync(join(gw.dir, 'clients.crl'), crl);
      writeFileSync(gw.configFile, yaml('optional', ', crl: clients.crl'));
      expect(await gw.gateway.reload()).toBe(true);
      await waitFor(() => closed);
    } finally {
      held.server.removeAllListeners('upgrade');
      for (const c of wss.clients) c.terminate();
      wss.close();
      await gw.close();
    }
  });

  it('a connection busy during the CA/CRL reload finishes its answer with Connection: close', async () => {
    const gw = await startGateway(yaml('optional'), { files: files() });
    try {
      const revoked = connectKeepAlive(gw, clients.revoked as Issued);
      const answer = revoked.send('/svc/hold');
      await waitFor(() => held.received.some((r) => r.url === '/svc/hold'));

      writeFileSync(join(gw.dir, 'clients.crl'), crl);
      writeFileSync(gw.configFile, yaml('optional', ', crl: clients.crl'));
      expect(await gw.gateway.reload()).toBe(true);
      expect(revoked.isClosed()).toBe(false);
      release();
      const done = await answer;
      expect(done.status).toBe(200);
      expect(done.head).toContain('\r\nconnection: close');
      await waitFor(() => revoked.isClosed());
    } finally {
      await gw.close();
    }
  });

  it('a handshake still in progress during the reload is verified against the old CRL: its certificate does not count', async () => {
    const gw = await startGateway(yaml('optional'), { files: files() });
    try {
      // TCP accepted (Node fixes the secure context now), TLS not started yet: the slow-handshake attacker.
      const tcpHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
      const handlesBefore = tcpHandles();
      const tcp = net.connect(gw.port, '127.0.0.1');
      await new Promise<void>((r) => tcp.once('connect', () => r()));
      // Both ends exist in this process: the listener has accepted the connection (and emitted 'connection').
      await waitFor(() => tcpHandles() >= handlesBefore + 2);
      writeFileSync(join(gw.dir, 'clients.crl'), crl);
      writeFileSync(gw.configFile, yaml('optional', ', crl: clients.crl'));
      expect(await gw.gateway.reload()).toBe(true);

      const revokedCert = clients.revoked as Issued;
      const socket = tls.connect({ socket: tcp, ca: ca.cert, servername: 'localhost', cert: revokedCert.cert, key: revokedCert.key });
      const conn = keepAlive(socket, new Promise((r) => socket.once('secureConnect', () => r())));
      const before = held.received.length;
      const a = await conn.send('/svc/slow-handshake');
      expect(a.status).toBe(401);
      expect(a.head).toContain('error="invalid_client"');
      expect(a.head).toContain('\r\nconnection: close');
      expect(held.received.length).toBe(before);
      await waitFor(() => conn.isClosed());
    } finally {
      await gw.close();
    }
  });
});
