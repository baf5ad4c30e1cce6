// HTTP/2-specific refusals and limits, each with a raw client: node:http2's client where it lets us, a
// hand-written frame writer (test/helpers/h2-frames.ts) for what it forbids. Every case asserts the
// observable result (RST_STREAM / GOAWAY code, or the status) and that the upstream received nothing.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, type CertificateAuthority, type Issued } from '../../tools/pki.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { h2Connect, h2Outcome, h2Request, withH2Session } from '../helpers/h2.ts';
import { errorCode, FLAG, FRAME, frame, headerBlock, rawH2, requestHeaders, rstStream, type Frame } from '../helpers/h2-frames.ts';

const PROTOCOL_ERROR = 1;
const ENHANCE_YOUR_CALM = 11;

let ca: CertificateAuthority;
let cert: Issued;
let client: Issued;
let upstream: Upstream;
let gw: TestGateway;
/** Tight limits: 400 ms request timer, 300 ms idle. */
let tight: TestGateway;

beforeAll(async () => {
  ca = await createCA('h2 attack CA');
  cert = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  client = await ca.issue({ cn: 'billing', uris: ['spiffe://example.org/ns/prod/sa/billing'], client: true });
  upstream = await startUpstream();
  const files = { 'gw.crt': cert.cert, 'gw.key': cert.key, 'ca.crt': ca.cert };
  const routes = `identity_providers:
  mesh: { type: mtls, trust_domain: example.org }
routes:
  - name: svc
    match: { path: /svc }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [mesh]
    authorize: { allow: [{ authenticated: true }] }
  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`;
  gw = await startGateway(`listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key, client_ca: ca.crt, client_auth: optional }
shutdown: { drain_timeout: 1s }
${routes}`, { dir: tempDir('ztgw-h2a-'), files });
  tight = await startGateway(`listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
  limits: { request_timeout: 400ms, headers_timeout: 300ms, keep_alive_timeout: 300ms, max_header_bytes: 4096 }
shutdown: { drain_timeout: 1s }
routes:
  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`, { dir: tempDir('ztgw-h2b-'), files });
});

afterAll(async () => {
  await gw?.close();
  await tight?.close();
  await upstream?.close();
});

/** Sends one request as a raw header block; resolves with the first answer frame on stream 1 (or GOAWAY). */
async function rawOutcome(fields: ReadonlyArray<readonly [string, string]>, port = gw.port): Promise<Frame | undefined> {
  const c = await rawH2(port, ca.cert);
  try {
    c.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(fields)));
    return await c.waitFor((f) => (f.stream === 1 && (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM)) || f.type === FRAME.GOAWAY);
  } finally {
    c.close();
  }
}

/** A refusal by the protocol layer: RST_STREAM or GOAWAY with PROTOCOL_ERROR, or a 400 problem answer. */
function expectRefused(f: Frame | undefined): void {
  expect(f).toBeDefined();
  if (f!.type === FRAME.HEADERS) expect(f!.payload[0]).toBe(0x8c); // :status 400 (HPACK static index 12)
  else expect(errorCode(f!)).toBe(PROTOCOL_ERROR);
}

describe('a raw client: what HTTP/2 forbids never reaches the upstream', () => {
  it('control: a well-formed raw request is answered 200 and forwarded', async () => {
    upstream.reset();
    const f = await rawOutcome(requestHeaders(gw.port, '/ok'));
    expect(f?.type).toBe(FRAME.HEADERS);
    expect(f?.payload[0]).toBe(0x88); // :status 200
    expect(upstream.received.map((r) => r.url)).toEqual(['/ok']);
  });

  for (const [name, value] of [['connection', 'keep-alive'], ['keep-alive', 'timeout=5'], ['proxy-connection', 'keep-alive'], ['transfer-encoding', 'chunked'], ['upgrade', 'websocket'], ['te', 'gzip']] as const) {
    it(`connection-specific header ${name}: ${value}`, async () => {
      upstream.reset();
      expectRefused(await rawOutcome(requestHeaders(gw.port, '/x', [[name, value]])));
      expect(upstream.received).toHaveLength(0);
    });
  }

  it('te: trailers is allowed', async () => {
    upstream.reset();
    const f = await rawOutcome(requestHeaders(gw.port, '/te', [['te', 'trailers']]));
    expect(f?.payload[0]).toBe(0x88);
    expect(upstream.received).toHaveLength(1);
    expect(upstream.received[0]!.headers.te).toBeUndefined(); // hop-by-hop: not forwarded to HTTP/1.1
  });

  const cases: Array<[string, Array<readonly [string, string]>]> = [
    ['an upper-case header name', requestHeaders(0, '/x', [['X-Upper', '1']])],
    ['a repeated pseudo-header', [...requestHeaders(0, '/x'), [':path', '/y']]],
    ['a pseudo-header after a regular one', [[':method', 'GET'], [':scheme', 'https'], ['x-a', '1'], [':path', '/x'], [':authority', 'localhost']]],
    [':path not starting with /', requestHeaders(0, 'x')],
    ['an unknown pseudo-header', [...requestHeaders(0, '/x'), [':foo', 'bar']]],
    ['extended CONNECT (:protocol, never advertised)', [[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/chat']]],
    ['no :path', [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost']]],
  ];
  for (const [what, fields] of cases) {
    it(what, async () => {
      upstream.reset();
      expectRefused(await rawOutcome(fields.map(([n, v]) => [n, n === ':authority' ? `localhost:${gw.port}` : v] as const)));
      expect(upstream.received).toHaveLength(0);
    });
  }

  it('CONNECT (plain): refused with 400, nothing forwarded', async () => {
    upstream.reset();
    const f = await rawOutcome([[':method', 'CONNECT'], [':authority', 'example.com:443']]);
    expectRefused(f);
    expect(upstream.received).toHaveLength(0);
  });

  it(':authority and host that disagree: 400', async () => {
    upstream.reset();
    const f = await rawOutcome(requestHeaders(gw.port, '/x', [['host', 'evil.example']]));
    expect(f?.type).toBe(FRAME.HEADERS);
    expect(f?.payload[0]).toBe(0x8c);
    expect(upstream.received).toHaveLength(0);
  });
});

describe('concurrent streams', () => {
  it('more than 100 open streams: the extra ones are refused (REFUSED_STREAM or PROTOCOL_ERROR)', async () => {
    const c = await rawH2(gw.port, ca.cert);
    try {
      await c.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0, 2000);
      const block = headerBlock([...requestHeaders(gw.port, '/open'), ['content-type', 'text/plain']]);
      const frames: Buffer[] = [];
      for (let i = 0; i < 110; i++) frames.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, block)); // bodies never end
      c.send(Buffer.concat(frames));
      const refused = await c.waitFor((f) => f.type === FRAME.RST_STREAM || f.type === FRAME.GOAWAY, 3000);
      expect(refused).toBeDefined();
      if (refused!.type === FRAME.RST_STREAM) {
        expect(refused!.stream).toBeGreaterThan(1 + 2 * 99);
        expect([7, PROTOCOL_ERROR]).toContain(errorCode(refused!));
      } else expect(errorCode(refused!)).toBe(PROTOCOL_ERROR);
    } finally {
      c.close();
    }
  });
});

describe('rapid reset (CVE-2023-44487)', () => {
  it('closes the session after a bounded number of resets; the upstream sees a bounded number of requests', async () => {
    upstream.reset();
    const c = await rawH2(gw.port, ca.cert);
    const block = headerBlock(requestHeaders(gw.port, '/reset'));
    const burst: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const id = 1 + 2 * i;
      burst.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, block), rstStream(id, 8 /* CANCEL */));
    }
    c.send(Buffer.concat(burst));
    const goaway = await c.waitFor((f) => f.type === FRAME.GOAWAY, 5000);
    await c.closed;
    expect(goaway).toBeDefined();
    expect(errorCode(goaway!)).toBe(ENHANCE_YOUR_CALM);
    await new Promise((r) => setTimeout(r, 300));
    expect(upstream.received.length).toBeLessThanOrEqual(150);
  });
});

describe('CONTINUATION flood (CVE-2024-27316 class)', () => {
  it('a header block that never ends is cut at the header list limit: connection closed, memory bounded', async () => {
    upstream.reset();
    const c = await rawH2(gw.port, ca.cert);
    const before = process.memoryUsage().rss;
    c.send(frame(FRAME.HEADERS, 0, 1, headerBlock(requestHeaders(gw.port, '/flood'))));
    const piece = frame(FRAME.CONTINUATION, 0, 1, headerBlock([['x-flood', 'a'.repeat(1000)]]));
    let sent = 0;
    // Up to 64 MB of CONTINUATION frames, never END_HEADERS; the gateway must close long before.
    while (sent < 64 * 1024 * 1024 && !c.socket.destroyed) {
      if (!c.send(Buffer.concat(Array.from({ length: 64 }, () => piece)))) await new Promise((r) => c.socket.once('drain', r).once('close', r));
      sent += 64 * piece.length;
    }
    const end = await c.waitFor((f) => f.type === FRAME.GOAWAY || (f.type === FRAME.RST_STREAM && f.stream === 1), 3000);
    // nghttp2 ends the session after a bounded number of CONTINUATION frames (its error: "Too many
    // CONTINUATION frames following a HEADER frame"): a GOAWAY or the connection simply closed.
    expect(end !== undefined || c.socket.destroyed).toBe(true);
    c.close();
    expect(sent).toBeLessThan(4 * 1024 * 1024);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    expect(upstream.received).toHaveLength(0);
  });
});

describe('header list over max_header_bytes', () => {
  it('is refused (431 or a stream reset); the upstream sees nothing', async () => {
    upstream.reset();
    await withH2Session(tight.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const out = await h2Outcome(session, { ':path': '/big', ':authority': `localhost:${tight.port}`, 'x-big': 'b'.repeat(8000) });
      if (out.status !== undefined) expect(out.status).toBe(431);
      else expect(out.rstCode).toBeGreaterThan(0);
      expect(upstream.received).toHaveLength(0);
    });
  });
});

describe('limits HTTP/1.1 has', () => {
  it('request_timeout per stream: a body that never ends gets 408 and the stream ends', async () => {
    upstream.reset();
    await withH2Session(tight.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const stream = session.request({ ':method': 'POST', ':path': '/slow', ':authority': `localhost:${tight.port}` }, { endStream: false });
      stream.write('partial');
      const started = Date.now();
      const status = await new Promise<number | undefined>((r) => {
        stream.on('response', (h) => r(Number(h[':status'])));
        stream.on('close', () => r(undefined));
        stream.on('error', () => undefined);
      });
      expect(status).toBe(408);
      expect(Date.now() - started).toBeLessThan(2000);
      await new Promise((r) => stream.once('close', r));
      expect(upstream.received).toHaveLength(0); // the upstream never got a complete request
    });
  });

  it('an idle session is closed with GOAWAY (NO_ERROR) after keep_alive_timeout', async () => {
    const session = await h2Connect(tight.url, { ca: ca.cert, servername: 'localhost' });
    const res = await h2Request(session, { ':path': '/one', ':authority': `localhost:${tight.port}` });
    expect(res.status).toBe(200);
    const started = Date.now();
    const code = await new Promise<number>((r) => session.once('goaway', (c: number) => r(c)));
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(1500);
    await new Promise((r) => (session.closed ? r(undefined) : session.once('close', r)));
  });

  it('a header block dripped slowly (HEADERS, then a CONTINUATION now and then) is cut by the idle timeout', async () => {
    upstream.reset();
    const c = await rawH2(tight.port, ca.cert);
    c.send(frame(FRAME.HEADERS, 0, 1, headerBlock(requestHeaders(tight.port, '/drip'))));
    const started = Date.now();
    const drip = setInterval(() => c.send(frame(FRAME.CONTINUATION, 0, 1, headerBlock([['x-d', 'x']]))), 250); // nghttp2's 8-frame CONTINUATION cap would take 2 s
    try {
      await c.closed;
      expect(Date.now() - started).toBeLessThan(1600); // keep_alive_timeout 300 ms + the 1 s grace
      expect(upstream.received).toHaveLength(0);
    } finally {
      clearInterval(drip);
      c.close();
    }
  });

  it('a client that opens no stream at all is closed too', async () => {
    const c = await rawH2(tight.port, ca.cert);
    const goaway = await c.waitFor((f) => f.type === FRAME.GOAWAY, 2000);
    expect(goaway).toBeDefined();
    expect(errorCode(goaway!)).toBe(0);
    c.close();
  });
});

describe('mTLS over HTTP/2', () => {
  it('the client certificate of the h2 connection authenticates (req.socket is the TLS socket)', async () => {
    upstream.reset();
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost', cert: client.cert, key: client.key }, async (session) => {
      const res = await h2Request(session, { ':path': '/svc/x', ':authority': `localhost:${gw.port}` });
      expect(res.status).toBe(200);
      expect(upstream.received.at(-1)!.headers['x-zt-spiffe-id']).toBe('spiffe://example.org/ns/prod/sa/billing');
      // A second request on the same session: the per-connection identity cache works too.
      const again = await h2Request(session, { ':path': '/svc/y', ':authority': `localhost:${gw.port}` });
      expect(again.status).toBe(200);
    });
  });

  it('without a certificate: 401 over h2', async () => {
    upstream.reset();
    await withH2Session(gw.url, { ca: ca.cert, servername: 'localhost' }, async (session) => {
      const res = await h2Request(session, { ':path': '/svc/x', ':authority': `localhost:${gw.port}` });
      expect(res.status).toBe(401);
      expect(upstream.received).toHaveLength(0);
    });
  });
});

describe('client CA reload with HTTP/2 sessions open', () => {
  it('a session verified against the replaced CA gets GOAWAY; a new one is verified afresh', async () => {
    upstream.reset();
    const session = await h2Connect(gw.url, { ca: ca.cert, servername: 'localhost', cert: client.cert, key: client.key });
    const first = await h2Request(session, { ':path': '/svc/before', ':authority': `localhost:${gw.port}` });
    expect(first.status).toBe(200);
    const goaway = new Promise<number>((r) => session.once('goaway', (code: number) => r(code)));
    const other = await createCA('another client CA');
    writeFileSync(join(gw.dir, 'ca.crt'), `${ca.cert}\n${other.cert}`);
    expect(await gw.gateway.reload()).toBe(true);
    expect(await goaway).toBe(0);
    session.destroy();
    const fresh = await h2Connect(gw.url, { ca: ca.cert, servername: 'localhost', cert: client.cert, key: client.key });
    try {
      const res = await h2Request(fresh, { ':path': '/svc/after', ':authority': `localhost:${gw.port}` });
      expect(res.status).toBe(200);
      expect(upstream.received.map((r) => r.url)).toEqual(['/svc/before', '/svc/after']);
    } finally {
      fresh.close();
    }
  });
});
