// Access logs: one record per request with the fields operators need; credentials never in any log line;
// an unexpected exception answers 500 without internals and the process keeps serving.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { SignJWT } from 'jose';
import type { Pool } from 'undici';
import { Gateway } from '../../src/server/gateway.ts';
import { captureLogger, tempDir } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const JWT_SECRET = 'S3cr3t-HS256-key-0123456789-abcdefghijklmnop';
// Every value below must never appear in any log line, whatever happens to the request.
const SECRETS = {
  bearer: 'BearerTok-7f1e9c2d4b',
  cookie: 'CookieVal-93ab7e21c0',
  query: 'QueryTok-51d0c8e2aa',
  basic: Buffer.from('alice:BasicPw-0a9b8c7d').toString('base64'),
  basicPw: 'BasicPw-0a9b8c7d',
  setCookie: 'SetCookieVal-2c4e6a8b',
  apiKeyHeader: 'XApiKey-6e5d4c3b2a',
  jwtSecret: JWT_SECRET,
};

let upstream: Upstream;
let gateway: Gateway;
let url: string;
let logs: Array<Record<string, unknown>>;
let raw: string[];
let validJwt: string;
let forgedJwt: string;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url?.startsWith('/app/cookie') !== true) return false;
    res.writeHead(200, { 'set-cookie': `session=${SECRETS.setCookie}; HttpOnly`, 'content-type': 'text/plain' });
    res.end('cookie set');
    return true;
  });
  const dir = tempDir('ztgw-log-');
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(
    configFile,
    `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_providers:
  ci: { type: jwt, issuer: https://ci.test, audiences: [gw], algorithms: [HS256], secret: "\${env:JWT_SECRET}" }
routes:
  - name: app
    match: { path: /app }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
  - name: jwt
    match: { path: /jwt }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [ci]
    authorize: { allow: [{ authenticated: true }] }
  - name: closed
    match: { path: /closed }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
  - name: limited
    match: { path: /limited }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
    rate_limit: { per: ip, limit: 1000, window: 1m }
  - name: down
    match: { path: /down }
    upstream: { url: http://127.0.0.1:9, timeout: 1s, connect_timeout: 500ms }
    public: true
`,
  );
  const captured = captureLogger();
  logs = captured.logs;
  raw = captured.raw;
  gateway = new Gateway({ configFile, env: { JWT_SECRET }, logger: captured.logger, watch: false });
  await gateway.start();
  url = gateway.url;
  const key = new TextEncoder().encode(JWT_SECRET);
  const now = Math.floor(Date.now() / 1000);
  validJwt = await new SignJWT({ email: 'eve@corp.test' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://ci.test')
    .setAudience('gw')
    .setSubject('eve')
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(key);
  forgedJwt = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://ci.test')
    .setAudience('gw')
    .setSubject('mallory')
    .setExpirationTime(now + 300)
    .sign(new TextEncoder().encode('x'.repeat(48)));
});

afterAll(async () => {
  await gateway?.stop();
  await upstream?.close();
});

function accessRecords(id: unknown): Array<Record<string, unknown>> {
  return logs.filter((l) => l.msg === 'request' && l.req_id === id);
}

async function settled(id: unknown): Promise<Record<string, unknown>> {
  // The record is written when the response closes, which can be just after the client has read it.
  await waitFor(() => accessRecords(id).length > 0);
  return accessRecords(id)[0]!;
}

describe('access log', () => {
  it('writes exactly one record per request with id, route, method, path without query, status, timing, bytes', async () => {
    const body = 'x'.repeat(5000);
    const res = await request(`${url}/app/items/42?page=2&token=${SECRETS.query}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${SECRETS.bearer}`, cookie: `sid=${SECRETS.cookie}` },
      body,
    });
    expect(res.statusCode).toBe(200);
    const text = await res.body.text();
    const id = res.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const rec = await settled(id);
    // A barrier instead of a pause: records go out in order on one stream, so once a later request's record is
    // there, a second record for this request (if the gateway wrote one) would be there too.
    const next = await request(`${url}/app/barrier`);
    await next.body.dump();
    await settled(next.headers['x-request-id']);
    expect(accessRecords(id)).toHaveLength(1);
    expect(rec).toMatchObject({
      level: 'info',
      req_id: id,
      route: 'app',
      method: 'POST',
      path: '/app/items/42',
      status: 200,
      completed: true,
      client_ip: '127.0.0.1',
    });
    expect(typeof rec.duration_ms).toBe('number');
    expect(rec.duration_ms as number).toBeGreaterThan(0);
    expect(rec.duration_ms as number).toBeLessThan(5000);
    expect(typeof rec.bytes_in).toBe('number');
    expect(rec.bytes_in as number).toBeGreaterThanOrEqual(0);
    expect(rec.bytes_out as number).toBeGreaterThan(Buffer.byteLength(text));
    expect(JSON.stringify(rec)).not.toContain('page=2');
    // …and one decision record for the same request.
    expect(logs.filter((l) => l.msg === 'decision' && l.request_id === id)).toHaveLength(1);
  });

  // KNOWN BUG (src/pipeline/handler.ts, `const bytesIn = socket.bytesRead`; not in this suite's files): bytes_in is socket.bytesRead minus its
  // value when the handler starts, but by then the request head (and any body that came in the same reads) has
  // been read, so a small POST logs bytes_in 0. Turn this into it() once bytes_in counts head + body.
  it('bytes_in counts the request head and body', async () => {
    const body = 'y'.repeat(5000);
    const res = await request(`${url}/app/bytes`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    await res.body.text();
    const rec = await settled(res.headers['x-request-id']);
    expect(rec.bytes_in as number).toBeGreaterThan(body.length);
  });

  it('records refusals too, with their code', async () => {
    const res = await request(`${url}/nowhere?token=${SECRETS.query}`);
    expect(res.statusCode).toBe(404);
    await res.body.text();
    const rec = await settled(res.headers['x-request-id']);
    expect(rec).toMatchObject({ status: 404, code: 'GW_ERR_NO_ROUTE', path: '/nowhere', method: 'GET' });
    expect(rec.route).toBeUndefined();
  });
});

describe('credentials never reach the logs', () => {
  it('keeps Authorization, Cookie, Set-Cookie, query tokens and secrets out of every raw log line', async () => {
    const creds = { authorization: `Bearer ${SECRETS.bearer}`, cookie: `sid=${SECRETS.cookie}; other=${SECRETS.cookie}`, 'x-api-key': SECRETS.apiKeyHeader };
    const q = `?access_token=${SECRETS.query}&token=${SECRETS.query}`;
    const statuses: number[] = [];
    const send = async (path: string, headers: Record<string, string>) => {
      const res = await request(`${url}${path}`, { headers });
      statuses.push(res.statusCode);
      await res.body.text();
      await settled(res.headers['x-request-id']);
    };
    await send(`/app/ok${q}`, creds); // forwarded
    await send(`/app/cookie${q}`, creds); // upstream sets a cookie
    await send(`/closed/x${q}`, creds); // 401: no provider
    await send(`/jwt/x${q}`, { ...creds, authorization: `Bearer ${forgedJwt}` }); // 401: bad signature
    await send(`/jwt/x${q}`, { ...creds, authorization: `Bearer ${validJwt}` }); // 200: verified
    await send(`/jwt/x${q}`, { ...creds, authorization: `Basic ${SECRETS.basic}` }); // 401: wrong scheme
    await send(`/down/x${q}`, creds); // 502
    await send(`/nowhere${q}`, creds); // 404
    expect(statuses).toEqual([200, 200, 401, 401, 200, 401, 502, 404]);
    // Refused before routing (400), and refused by the HTTP parser (duplicate Content-Length).
    const refused = await rawRequest(
      Number(new URL(url).port),
      `GET /app/../etc${q} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRETS.bearer}\r\nCookie: sid=${SECRETS.cookie}\r\n\r\n`,
    );
    expect(refused.status).toBe(400);
    const parser = await rawRequest(
      Number(new URL(url).port),
      `POST /app/x${q} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRETS.bearer}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
    );
    expect(parser.status).toBe(400);
    await waitFor(() => logs.filter((l) => l.msg === 'client error').length > 0);

    // The verified JWT request reached the upstream as eve (so authn really ran) …
    expect(upstream.received.some((r) => r.url.startsWith('/jwt/x') && r.headers['x-zt-user'] === 'eve')).toBe(true);
    // … and nothing secret was written anywhere.
    const all = raw.join('\n');
    expect(raw.length).toBeGreaterThan(20);
    for (const [name, secret] of Object.entries({ ...SECRETS, validJwt, forgedJwt })) {
      expect(all.includes(secret), `${name} leaked into the logs`).toBe(false);
    }
    // The JWT's signature part alone must not leak either.
    for (const jwt of [validJwt, forgedJwt]) expect(all.includes(jwt.split('.')[2]!)).toBe(false);
  });
});

describe('unexpected exceptions', () => {
  function injectFaultyPool(route: string): () => void {
    const state = gateway.runtime.current;
    // The pool of the route's (only) endpoint, as its balancer hands it out.
    const endpoint = state.upstreams.get(route)!.endpoints[0] as unknown as { pool: Pool };
    const real = endpoint.pool;
    const faulty = {
      stream() {
        throw new TypeError(`cannot read /etc/zt/secret.key at Object.<anonymous> (${SECRETS.bearer})`);
      },
    } as unknown as Pool;
    endpoint.pool = faulty;
    return () => (endpoint.pool = real);
  }

  it('answers 500 GW_ERR_INTERNAL without stack or message, logs the cause, and keeps serving', async () => {
    const restore = injectFaultyPool('app');
    let id: unknown;
    try {
      const res = await request(`${url}/app/boom`);
      expect(res.statusCode).toBe(500);
      expect(res.headers['content-type']).toBe('application/problem+json');
      const text = await res.body.text();
      const problem = JSON.parse(text) as Record<string, unknown>;
      id = res.headers['x-request-id'];
      expect(problem).toEqual({
        type: 'urn:zt-gateway:error:GW_ERR_INTERNAL',
        title: 'Internal error',
        status: 500,
        code: 'GW_ERR_INTERNAL',
        detail: 'Internal error',
        request_id: id,
      });
      expect(text).not.toMatch(/secret\.key|TypeError|\n\s+at |\.ts:\d+/);
    } finally {
      restore();
    }
    const rec = await settled(id);
    expect(rec).toMatchObject({ status: 500, code: 'GW_ERR_INTERNAL', route: 'app' });
    const failure = logs.find((l) => l.msg === 'request failed' && l.req_id === id);
    expect(failure?.level).toBe('warn');
    // The process is fine and the route serves again.
    const ok = await request(`${url}/app/after-boom`);
    expect(ok.statusCode).toBe(200);
    await ok.body.text();
    expect(upstream.received.at(-1)!.url).toBe('/app/after-boom');
  });

  // KNOWN BUG (src/pipeline/handler.ts, `admitted.then(send, …)`; not in this suite's files): `admitted.then(send, fail)` does not catch
  // an exception thrown inside send(), so after any asynchronous stage (rate limit, JWKS fetch, assertion
  // signing) such an exception is an unhandled rejection: no answer to the client, and a crash of a process that
  // has no unhandledRejection handler. Fix: `admitted.then(send).catch((err) => fail(err, current.id))`.
  // Turn this into it() once fixed.
  it('answers 500 the same way when the failure comes after an asynchronous stage (rate limit)', async () => {
    const restore = injectFaultyPool('limited');
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const res = await request(`${url}/limited/boom`, { headersTimeout: 500 }).catch((err: Error) => err);
      expect(res).not.toBeInstanceOf(Error);
      const r = res as Awaited<ReturnType<typeof request>>;
      expect(r.statusCode).toBe(500);
      expect(((await r.body.json()) as { code: string }).code).toBe('GW_ERR_INTERNAL');
    } finally {
      restore();
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});
