// tracing.otlp: spans leave the gateway for an in-process OTLP/HTTP receiver (JSON). One server span per
// request with the HTTP semantic-convention attributes, client spans under it for the upstream request, the
// JWKS fetch (a real JWKS server) and Redis commands; the upstream is told the gateway's upstream span as its
// parent. A trusted proxy's trace is continued, an untrusted client's starts anew (linked). Ratio 0 exports
// nothing. No secret (bearer token, cookie value, query string) appears anywhere in an export.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startIdp, type TestIdp } from '../helpers/idp.ts';
import { closeAllLive, openLive, startEchoUpstream } from '../helpers/live.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp.ts';
import { IN_CI, redisForTests, type RedisServer } from '../helpers/redis.ts';
import { startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_PARENT = '00f067aa0ba902b7';
const CLIENT_TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`;
const COOKIE_VALUE = 'cookie-secret-value-1f2e3d';
const QUERY_SECRET = 'query-secret-token-9a8b7c';
const SERVER = 2;
const CLIENT = 3;

let upstream: Upstream;
let idp: TestIdp;
let receiver: OtlpReceiver;
let untrusted: TestGateway; // no trusted_proxies: the test client is anyone
let trusted: TestGateway; // 127.0.0.1 is a trusted proxy; include_subject: true
const tokens: string[] = [];
let n = 0;

const config = (extra: string, tracing = '') => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 2s }
tracing: { otlp: { endpoint: "${receiver.url}", headers: { x-collector-key: collector-key-value } }${tracing} }
identity_providers:
  main: { type: jwt, issuer: "${idp.issuer}", audiences: [gw], jwks_uri: "${idp.jwksUri}", jwks: { cooldown: 1s } }
${extra}
routes:
  - name: api
    match: { path: /api }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [main]
    authorize: { allow: [{ authenticated: true }] }
  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`;

beforeAll(async () => {
  upstream = await startUpstream();
  idp = await startIdp();
  receiver = await startOtlpReceiver();
  untrusted = await startGateway(config(''));
  trusted = await startGateway(config('trusted_proxies: [127.0.0.1/32]', ', include_subject: true'));
});

afterAll(async () => {
  await untrusted?.close();
  await trusted?.close();
  await receiver?.close();
  await idp?.close();
  await upstream?.close();
});

interface Sent {
  status: number;
  seen: Received | undefined;
  requestId: string;
}

async function send(gw: TestGateway, path: string, headers: Record<string, string> = {}): Promise<Sent> {
  const target = `${path}/${++n}`;
  const before = upstream.received.length;
  const res = await request(`${gw.url}${target}?access_token=${QUERY_SECRET}`, { headers: { cookie: `sid=${COOKIE_VALUE}`, 'user-agent': 'otlp-test/1.0', ...headers } });
  await res.body.dump();
  const seen = upstream.received.slice(before).find((r) => r.url.startsWith(target));
  return { status: res.statusCode, seen, requestId: String(res.headers['x-request-id']) };
}

function header(r: Received | undefined, name: string): string[] {
  const out: string[] = [];
  const raw = r?.rawHeaders ?? [];
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === name) out.push(raw[i + 1] as string);
  return out;
}

/** The server span whose url.path is `path` (waits for the export: the batch goes out within a second). */
function serverSpan(pathPrefix: string): Promise<ReceivedSpan> {
  return waitFor(() => receiver.spans.find((s) => s.kind === SERVER && String(s.attributes['url.path']).startsWith(pathPrefix)), { what: `the server span of ${pathPrefix}`, timeoutMs: 6000 });
}

function children(parent: ReceivedSpan): ReceivedSpan[] {
  return receiver.spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);
}

describe('tracing.otlp', () => {
  it('exports the server span with its HTTP attributes and the upstream span the upstream was told about', async () => {
    const r = await send(untrusted, '/pub');
    expect(r.status).toBe(200);
    const server = await serverSpan(`/pub/${n}`);
    expect(server.service).toBe('zt-gateway');
    expect(server.parentSpanId).toBe('');
    expect(server.name).toBe('GET app');
    expect(server.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': `/pub/${n}`,
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': untrusted.port,
      'client.address': '127.0.0.1',
      'user_agent.original': 'otlp-test/1.0',
      'http.route': 'app',
      'zt.route': 'app',
      'zt.decision': 'public',
      'http.response.status_code': 200,
      'network.protocol.version': '1.1',
    });
    expect(server.attributes['zt.error.code']).toBeUndefined();
    const up = await waitFor(() => children(server).find((s) => s.attributes['zt.upstream'] === 'forward'), { what: 'the upstream span' });
    expect(up.kind).toBe(CLIENT);
    expect(up.attributes).toMatchObject({ 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': upstream.port, 'http.response.status_code': 200 });
    // The upstream's parent is the gateway's upstream span, in the gateway's trace.
    expect(header(r.seen, 'traceparent')).toEqual([`00-${server.traceId}-${up.spanId}-01`]);
    expect(header(r.seen, 'tracestate')).toEqual([]);
  });

  it('an untrusted client’s traceparent starts a new trace, linked to the client’s, and is not forwarded', async () => {
    const r = await send(untrusted, '/pub', { traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=client-state' });
    expect(r.status).toBe(200);
    const server = await serverSpan(`/pub/${n}`);
    expect(server.traceId).not.toBe(CLIENT_TRACE);
    expect(server.parentSpanId).toBe('');
    expect(server.links).toEqual([{ traceId: CLIENT_TRACE, spanId: CLIENT_PARENT }]);
    const up = await waitFor(() => children(server).find((s) => s.attributes['zt.upstream'] === 'forward'), { what: 'the upstream span' });
    expect(header(r.seen, 'traceparent')).toEqual([`00-${server.traceId}-${up.spanId}-01`]);
    expect(header(r.seen, 'tracestate')).toEqual([]); // the client's tracestate belongs to the trace it named
    // The access log and the decision record name the trace the spans are in, not the client's.
    const access = await waitFor(() => untrusted.logs.find((l) => l.msg === 'request' && l.req_id === r.requestId), { what: 'the access record' });
    const decision = await waitFor(() => untrusted.logs.find((l) => l.msg === 'decision' && l.request_id === r.requestId), { what: 'the decision record' });
    expect(access.trace_id).toBe(server.traceId);
    expect(decision.trace_id).toBe(server.traceId);
  });

  it('a trusted proxy’s trace is continued: same trace id, its span as parent, its tracestate forwarded', async () => {
    const r = await send(trusted, '/pub', { traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=proxy-state' });
    expect(r.status).toBe(200);
    const server = await serverSpan(`/pub/${n}`);
    expect(server.traceId).toBe(CLIENT_TRACE);
    expect(server.parentSpanId).toBe(CLIENT_PARENT);
    expect(server.links).toEqual([]);
    const up = await waitFor(() => children(server).find((s) => s.attributes['zt.upstream'] === 'forward'), { what: 'the upstream span' });
    expect(header(r.seen, 'traceparent')).toEqual([`00-${CLIENT_TRACE}-${up.spanId}-01`]);
    expect(header(r.seen, 'tracestate')).toEqual(['vendor=proxy-state']);
  });

  it('an invalid traceparent from a trusted proxy is dropped: a new trace, the gateway’s own traceparent upstream', async () => {
    const r = await send(trusted, '/pub', { traceparent: `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_PARENT}-01` });
    const server = await serverSpan(`/pub/${n}`);
    expect(server.traceId).not.toBe(CLIENT_TRACE);
    expect(server.parentSpanId).toBe('');
    const up = await waitFor(() => children(server).find((s) => s.attributes['zt.upstream'] === 'forward'), { what: 'the upstream span' });
    expect(header(r.seen, 'traceparent')).toEqual([`00-${server.traceId}-${up.spanId}-01`]);
  });

  it('a JWT route: the JWKS fetch is a child of the first request’s span; the decision and the subject stay out', async () => {
    const token = await idp.sign({}, { sub: 'alice-subject' });
    tokens.push(token);
    const r = await send(untrusted, '/api', { authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    const server = await serverSpan(`/api/${n}`);
    expect(server.attributes).toMatchObject({ 'zt.route': 'api', 'zt.decision': 'allow', 'http.response.status_code': 200 });
    expect(server.attributes['enduser.id']).toBeUndefined(); // no include_subject
    const jwks = await waitFor(() => children(server).find((s) => s.attributes['zt.call'] === 'jwks'), { what: 'the JWKS span' });
    expect(jwks.kind).toBe(CLIENT);
    expect(jwks.attributes).toMatchObject({ 'http.request.method': 'GET', 'server.port': idp.port, 'url.path': '/jwks.json', 'http.response.status_code': 200 });
    const up = await waitFor(() => children(server).find((s) => s.attributes['zt.upstream'] === 'forward'), { what: 'the upstream span' });
    expect(header(r.seen, 'traceparent')).toEqual([`00-${server.traceId}-${up.spanId}-01`]);
  });

  it('include_subject: true puts the authenticated subject on the server span as enduser.id', async () => {
    const token = await idp.sign({}, { sub: 'bob-opted-in' });
    tokens.push(token);
    const r = await send(trusted, '/api', { authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    const server = await serverSpan(`/api/${n}`);
    expect(server.attributes['enduser.id']).toBe('bob-opted-in');
  });

  it('a refused request: its span carries the decision and the error code, and no upstream span exists', async () => {
    const r = await send(untrusted, '/api', { authorization: 'Bearer not-a-jwt-secret-abc' });
    tokens.push('not-a-jwt-secret-abc');
    expect(r.status).toBe(401);
    expect(r.seen).toBeUndefined();
    const server = await serverSpan(`/api/${n}`);
    expect(server.attributes).toMatchObject({ 'zt.route': 'api', 'zt.decision': 'unauthenticated', 'zt.error.code': 'GW_ERR_UNAUTHENTICATED', 'http.response.status_code': 401 });
    expect(server.status.code ?? 0).toBe(0); // a 4xx is the client's error, not the server's
    expect(children(server).filter((s) => s.attributes['zt.upstream'] === 'forward')).toEqual([]);
  });

  it('exports JSON with the configured headers, and no secret appears in any export', async () => {
    await waitFor(() => receiver.bodies.length > 0, { what: 'an export' });
    expect(new Set(receiver.contentTypes)).toEqual(new Set(['application/json']));
    expect(new Set(receiver.collectorKeys)).toEqual(new Set(['collector-key-value']));
    const all = receiver.bodies.join('\n');
    for (const secret of [...tokens, COOKIE_VALUE, QUERY_SECRET, 'access_token', 'alice-subject']) expect(all).not.toContain(secret);
    for (const s of receiver.spans) for (const v of Object.values(s.attributes)) expect(String(v)).not.toContain('?');
  });
});

describe('tracing.otlp with WebSocket upgrades', () => {
  it('the handshake has a server span ended at the 101, and the upstream is told it as the parent, not the client’s', async () => {
    const echo = await startEchoUpstream();
    const gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
tracing: { otlp: { endpoint: "${receiver.url}" } }
routes:
  - { name: ws, match: { path: / }, upstream: { url: "${echo.url}" }, public: true }
`);
    try {
      const client = await openLive(`ws://127.0.0.1:${gw.port}/socket?ticket=${QUERY_SECRET}`, { headers: { traceparent: CLIENT_TRACEPARENT } });
      await client.roundTrip('ping');
      const server = await serverSpan('/socket');
      expect(server.traceId).not.toBe(CLIENT_TRACE); // an untrusted client's trace is not continued
      expect(server.attributes).toMatchObject({ 'zt.route': 'ws', 'http.response.status_code': 101, 'http.request.method': 'GET' });
      const [conn] = echo.connections;
      expect(conn?.headers.traceparent).toBe(`00-${server.traceId}-${server.spanId}-01`);
      expect(receiver.bodies.join('\n')).not.toContain(QUERY_SECRET);
    } finally {
      closeAllLive();
      await gw.close();
      await echo.close();
    }
  });
});

describe('tracing.otlp with sample_ratio 0', () => {
  it('exports nothing for new traces, and still tells the upstream an (unsampled) traceparent', async () => {
    const own = await startOtlpReceiver();
    const gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
tracing: { otlp: { endpoint: "${own.url}" }, sample_ratio: 0 }
routes:
  - { name: app, match: { path: / }, upstream: { url: "${upstream.url}" }, public: true }
`);
    try {
      const r = await send(gw, '/zero');
      expect(r.status).toBe(200);
      const [tp] = header(r.seen, 'traceparent');
      expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    } finally {
      await gw.close(); // shutdown flushes whatever was queued
      await own.close();
    }
    expect(own.bodies).toEqual([]);
  });
});

describe('tracing.otlp with state.redis', () => {
  let redisServer: RedisServer | undefined;
  let gw: TestGateway | undefined;
  let own: OtlpReceiver | undefined;

  beforeAll(async () => {
    const redis = await redisForTests();
    redisServer = redis.server;
    if (!redis.url) return;
    own = await startOtlpReceiver();
    gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 2s }
state: { redis: "${redis.url}" }
tracing: { otlp: { endpoint: "${own.url}" }, include_subject: true }
routes:
  - name: limited
    match: { path: / }
    upstream: { url: "${upstream.url}" }
    public: true
    rate_limit: { per: ip, limit: 1000, window: 1m }
`);
  });

  afterAll(async () => {
    await gw?.close();
    await own?.close();
    await redisServer?.stop();
  });

  it('a rate-limited route’s Redis command is a child of the request’s span (name only, no keys)', async (t) => {
    // Only outside CI, without any Redis (redisForTests throws under CI=true; this guard does too).
    if (gw === undefined || own === undefined) {
      if (IN_CI) throw new Error('CI=true but the Redis-backed gateway did not start');
      return t.skip();
    }
    const receiverOf = own;
    // The first request may run before the Redis connection is ready (the limiter falls back to memory).
    await waitFor(async () => (await send(gw as TestGateway, '/limited')).status === 200 && receiverOf.spans.some((s) => s.name.startsWith('redis ')), { what: 'a Redis span', timeoutMs: 8000, intervalMs: 200 });
    const redisSpan = receiverOf.spans.find((s) => s.name.startsWith('redis ')) as ReceivedSpan;
    expect(redisSpan.kind).toBe(CLIENT);
    expect(redisSpan.attributes['db.system.name']).toBe('redis');
    const parent = await waitFor(() => receiverOf.spans.find((s) => s.spanId === redisSpan.parentSpanId && s.traceId === redisSpan.traceId), { what: 'the Redis span’s parent', timeoutMs: 6000 });
    expect(parent.kind).toBe(SERVER);
    expect(parent.attributes['zt.route']).toBe('limited');
    expect(Object.keys(redisSpan.attributes).sort()).toEqual(['db.operation.name', 'db.system.name']);
  });
});
