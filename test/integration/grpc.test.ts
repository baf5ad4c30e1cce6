// gRPC end to end: @grpc/grpc-js client → gateway (TLS, h2) → grpc-js server on an `upstream.http2` route.
// Unary and server-streaming calls with their trailers (grpc-status) relayed; the gateway's own refusals are
// trailers-only gRPC statuses: UNAUTHENTICATED (no token), PERMISSION_DENIED (a deny rule on a method path),
// RESOURCE_EXHAUSTED (a rate limit), UNAVAILABLE (a route whose upstream is HTTP/1.1).
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { createCA, type CertificateAuthority, type Issued } from '../../tools/pki.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { startIdp, type TestIdp } from '../helpers/idp.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// JSON messages: no .proto needed.
const ser = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): unknown => JSON.parse(b.toString('utf8'));
type Msg = { text: string; n?: number };
const service: grpc.ServiceDefinition = {
  Say: { path: '/demo.Echo/Say', requestStream: false, responseStream: false, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
  Count: { path: '/demo.Echo/Count', requestStream: false, responseStream: true, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
  Secret: { path: '/demo.Echo/Secret', requestStream: false, responseStream: false, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
  Forever: { path: '/demo.Echo/Forever', requestStream: false, responseStream: true, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
  Slow: { path: '/demo.Echo/Slow', requestStream: false, responseStream: false, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
  Fail: { path: '/demo.Echo/Fail', requestStream: false, responseStream: false, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
};
const Client = grpc.makeGenericClientConstructor(service, 'Echo');

let ca: CertificateAuthority;
let cert: Issued;
let idp: TestIdp;
let server: grpc.Server;
let h1: Upstream;
let gw: TestGateway;
let gwYaml = '';
let grpcPort = 0;
const slowDeadlines: number[] = [];
const seen: Array<{ method: string; te: unknown; user: unknown; deadline: boolean }> = [];

function client(): grpc.Client {
  return new Client(`localhost:${gw.port}`, grpc.credentials.createSsl(Buffer.from(ca.cert)));
}

function unary(c: grpc.Client, method: string, msg: Msg, md = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<{ err: grpc.ServiceError | null; res: Msg | undefined }> {
  return new Promise((resolve) => {
    c.makeUnaryRequest(`/demo.Echo/${method}`, ser, de as (b: Buffer) => Msg, msg, md, options, (err, res) => resolve({ err, res }));
  });
}

function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

beforeAll(async () => {
  ca = await createCA('grpc CA');
  cert = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  idp = await startIdp({ audience: 'gw' });
  server = new grpc.Server();
  const record = (call: grpc.ServerUnaryCall<Msg, Msg> | grpc.ServerWritableStream<Msg, Msg>, method: string) =>
    seen.push({ method, te: call.metadata.get('te')[0], user: call.metadata.get('x-zt-user')[0], deadline: Number.isFinite(call.getDeadline() as number) });
  server.addService(service, {
    Say: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      record(call, 'Say');
      cb(null, { text: `hello ${call.request.text}` });
    },
    Count: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      record(call, 'Count');
      for (let i = 1; i <= (call.request.n ?? 3); i++) call.write({ text: 'tick', n: i });
      call.end();
    },
    Secret: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      record(call, 'Secret');
      cb(null, { text: 'secret' });
    },
    Forever: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      record(call, 'Forever');
      let n = 0;
      const timer = setInterval(() => call.write({ text: 'tick', n: ++n }), 50);
      call.on('cancelled', () => clearInterval(timer));
      call.on('close', () => clearInterval(timer));
    },
    Slow: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      record(call, 'Slow');
      slowDeadlines.push(Number(call.getDeadline()) - Date.now());
      setTimeout(() => cb(null, { text: 'late' }), 3000).unref();
    },
    Fail: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      record(call, 'Fail');
      cb({ code: grpc.status.FAILED_PRECONDITION, details: 'not now' });
    },
  });
  const port = (grpcPort = await new Promise<number>((r, j) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? j(e) : r(p)))));
  h1 = await startUpstream();
  gwYaml = `listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: jwt, issuer: "${idp.issuer}", audiences: [gw], jwks_uri: "${idp.jwksUri}" }
routes:
  - name: legacy
    match: { path: /legacy.Svc }
    upstream: { url: ${h1.url}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: echo
    match: { path: /demo.Echo }
    upstream: { url: http://127.0.0.1:${port}, http2: true, timeout: 2s, connect_timeout: 1s }
    authenticate: [keys]
    rate_limit: { per: subject, limit: 8, window: 1m }
    authorize:
      deny: [{ name: no-secrets, paths: /demo.Echo/Secret }]
      allow: [{ authenticated: true }]
`;
  gw = await startGateway(gwYaml, { dir: tempDir('ztgw-grpc-'), files: { 'gw.crt': cert.cert, 'gw.key': cert.key } });
});

afterAll(async () => {
  await gw?.close();
  server?.forceShutdown();
  await h1?.close();
  await idp?.close();
});

describe('gRPC through the gateway (h2 both sides)', () => {
  it('a unary call with a JWT works; te: trailers and the identity reach the server; grpc-timeout is honoured', async () => {
    const token = await idp.sign({ sub: 'alice', aud: 'gw' });
    const c = client();
    try {
      const { err, res } = await unary(c, 'Say', { text: 'bob' }, bearer(token), { deadline: Date.now() + 1500 });
      expect(err).toBeNull();
      expect(res).toEqual({ text: 'hello bob' });
      expect(seen.at(-1)).toEqual({ method: 'Say', te: undefined, user: 'alice', deadline: true }); // grpc-js keeps te out of metadata
    } finally {
      c.close();
    }
  });

  it('a server error status is relayed from the trailers', async () => {
    const token = await idp.sign({ sub: 'alice2', aud: 'gw' });
    const c = client();
    try {
      const { err } = await unary(c, 'Fail', { text: 'x' }, bearer(token));
      expect(err?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(err?.details).toBe('not now');
    } finally {
      c.close();
    }
  });

  it('a server-streaming call streams every message and ends with OK', async () => {
    const token = await idp.sign({ sub: 'carol', aud: 'gw' });
    const c = client();
    try {
      const got: Msg[] = [];
      const status = await new Promise<grpc.StatusObject>((resolve) => {
        const call = c.makeServerStreamRequest('/demo.Echo/Count', ser, de as (b: Buffer) => Msg, { text: 'go', n: 5 }, bearer(token));
        call.on('data', (m: Msg) => got.push(m));
        call.on('status', resolve);
        call.on('error', () => undefined);
      });
      expect(status.code).toBe(grpc.status.OK);
      expect(got.map((m) => m.n)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      c.close();
    }
  });

  it('no token: UNAUTHENTICATED, the server sees nothing', async () => {
    const before = seen.length;
    const c = client();
    try {
      const { err } = await unary(c, 'Say', { text: 'x' });
      expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err?.details).toMatch(/^GW_ERR_UNAUTHENTICATED/);
      expect(seen.length).toBe(before);
      // The access log keeps the refusal's HTTP meaning (the wire said 200 + grpc-status 16).
      await new Promise((r) => setTimeout(r, 50));
      const line = gw.logs.filter((l) => l.msg === 'request' && l.path === '/demo.Echo/Say').at(-1);
      expect(line?.status).toBe(401);
    } finally {
      c.close();
    }
  });

  it('a deny rule on a method path: PERMISSION_DENIED', async () => {
    const before = seen.length;
    const token = await idp.sign({ sub: 'dave', aud: 'gw' });
    const c = client();
    try {
      const { err } = await unary(c, 'Secret', { text: 'x' }, bearer(token));
      expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(seen.length).toBe(before);
    } finally {
      c.close();
    }
  });

  it('a streaming call is a live connection: a reload that denies it ends it with PERMISSION_DENIED in its trailers', async () => {
    const token = await idp.sign({ sub: 'gina', aud: 'gw' });
    const c = client();
    try {
      const got: Msg[] = [];
      let call: grpc.ClientReadableStream<Msg> | undefined;
      const status = new Promise<grpc.StatusObject>((resolve) => {
        call = c.makeServerStreamRequest('/demo.Echo/Forever', ser, de as (b: Buffer) => Msg, { text: 'go' }, bearer(token));
        call.on('data', (m: Msg) => got.push(m));
        call.on('status', resolve);
        call.on('error', () => undefined);
      });
      let done = false;
      void status.then(() => (done = true));
      while (got.length < 2 && !done) await new Promise((r) => setTimeout(r, 20));
      expect(got.length).toBeGreaterThanOrEqual(2);
      writeFileSync(gw.configFile, gwYaml.replace('deny: [{ name: no-secrets, paths: /demo.Echo/Secret }]', 'deny: [{ name: no-secrets, paths: /demo.Echo/Secret }, { name: no-forever, paths: /demo.Echo/Forever }]'));
      expect(await gw.gateway.reload()).toBe(true);
      const s = await status;
      expect(s.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(s.details).toBe('ended: policy');
      void call;
    } finally {
      c.close();
      writeFileSync(gw.configFile, gwYaml);
      await gw.gateway.reload();
    }
  });

  it('grpc-timeout above upstream.timeout is capped to it: the server is told 2 s, the client gets DEADLINE_EXCEEDED from the gateway', async () => {
    const token = await idp.sign({ sub: 'frank', aud: 'gw' });
    const c = client();
    try {
      const started = Date.now();
      const { err } = await unary(c, 'Slow', { text: 'x' }, bearer(token), { deadline: Date.now() + 10_000 });
      expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(err?.details).toMatch(/^GW_ERR_UPSTREAM_TIMEOUT/);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(slowDeadlines).toHaveLength(1);
      expect(slowDeadlines[0]).toBeLessThanOrEqual(2000);
      expect(slowDeadlines[0]).toBeGreaterThan(1000);
    } finally {
      c.close();
    }
  });

  it('over the rate limit: RESOURCE_EXHAUSTED', async () => {
    const token = await idp.sign({ sub: 'erin', aud: 'gw' });
    const c = client();
    try {
      const before = seen.length;
      const codes: number[] = [];
      for (let i = 0; i < 10; i++) codes.push((await unary(c, 'Say', { text: String(i) }, bearer(token))).err?.code ?? 0);
      // OK until the limit is reached (the limiter's window estimate decides exactly when), then exhausted.
      const firstRefused = codes.indexOf(grpc.status.RESOURCE_EXHAUSTED);
      expect(firstRefused).toBeGreaterThan(0);
      expect(codes.slice(0, firstRefused).every((c) => c === grpc.status.OK)).toBe(true);
      expect(codes.slice(firstRefused).every((c) => c === grpc.status.RESOURCE_EXHAUSTED)).toBe(true);
      expect(seen.length - before).toBe(firstRefused);
    } finally {
      c.close();
    }
  });

  it('a gRPC call on a route whose upstream is HTTP/1.1: UNAVAILABLE, nothing forwarded', async () => {
    h1.reset();
    const c = client();
    try {
      const { err } = await new Promise<{ err: grpc.ServiceError | null }>((resolve) =>
        c.makeUnaryRequest('/legacy.Svc/Do', ser, de, {}, (e) => resolve({ err: e })),
      );
      expect(err?.code).toBe(grpc.status.UNAVAILABLE);
      expect(h1.received).toHaveLength(0);
    } finally {
      c.close();
    }
  });

  it('h2c: a plain listener with listen.h2c carries gRPC from an insecure grpc-js client', async () => {
    const plain = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true, h2c: true }
shutdown: { drain_timeout: 1s }
routes:
  - name: echo
    match: { path: /demo.Echo }
    upstream: { url: http://127.0.0.1:${grpcPort}, http2: true, timeout: 2s, connect_timeout: 1s }
    public: true
`);
    const c = new Client(`127.0.0.1:${plain.port}`, grpc.credentials.createInsecure());
    try {
      const { err, res } = await unary(c, 'Say', { text: 'h2c' });
      expect(err).toBeNull();
      expect(res).toEqual({ text: 'hello h2c' });
    } finally {
      c.close();
      await plain.close();
    }
  });
});
