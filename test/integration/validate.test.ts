// Request validation against a real gateway and a recording upstream: refused requests never reach the
// upstream (status, code, field paths, no echoed values); valid bodies arrive byte for byte; an OpenAPI
// file routes validation per operation; report-only forwards and audits would_reject.
import { copyFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { requestFinished } from '../helpers/attack.ts';
import { rawRequest } from '../helpers/raw.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/openapi');

const BODY_SCHEMA = `{ type: object, required: [name], properties: { name: { type: string, maxLength: 50 }, tags: { type: array, maxItems: 100, items: { type: string } }, items: { type: array, maxItems: 100, items: { type: object, required: [qty], properties: { qty: { type: integer } } } }, nested: {} } }`;

function config(up: string): string {
  const upstream = `upstream: { url: ${up}, timeout: 2s, connect_timeout: 1s }`;
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_headers: { assertion: false }
routes:
  - name: inline
    match: { path: /inline }
    ${upstream}
    public: true
    validate:
      query: { type: object, properties: { page: { type: integer, minimum: 1 } } }
      body: ${BODY_SCHEMA}
      max_body: 4kb
  - name: api
    match: { path: /api }
    ${upstream}
    public: true
    validate: { openapi: orders.yaml, max_body: 64kb }
  - name: legacy
    match: { path: /legacy }
    ${upstream}
    public: true
    mode: report-only
    validate:
      body: ${BODY_SCHEMA}
      max_body: 1kb
  - name: tenant-api
    match: { path: "/t/{tenant}" }
    ${upstream}
    public: true
    validate: { openapi: orders.yaml }
  - name: json-only
    match: { path: /json-only }
    ${upstream}
    public: true
    validate: { content_types: [application/json, text/plain] }
  - name: bare
    match: { path: /bare }
    ${upstream}
    public: true
`;
}

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  const dir = tempDir();
  copyFileSync(join(FIXTURES, 'orders.yaml'), join(dir, 'orders.yaml'));
  gw = await startGateway(config(upstream.url), { dir });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});
beforeEach(() => {
  upstream.reset();
});

/** Sends `parts` with Transfer-Encoding: chunked, over a raw socket (no client may compute a length). */
async function sendChunked(path: string, parts: Buffer[], type = 'application/json') {
  const head = `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${gw.port}\r\ncontent-type: ${type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n`;
  const body = parts.map((p) => Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]));
  const r = await rawRequest(gw.port, Buffer.concat([Buffer.from(head), ...body, Buffer.from('0\r\n\r\n')]));
  return { status: r.status, text: r.body, json: r.body.startsWith('{') ? (JSON.parse(r.body) as Record<string, unknown>) : {} };
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function send(path: string, body: string | Buffer | Readable | undefined, opts: { method?: string; type?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.type !== null) headers['content-type'] = opts.type ?? 'application/json';
  const res = await request(`${gw.url}${path}`, { method: (opts.method ?? (body === undefined ? 'GET' : 'POST')) as 'POST', headers, body });
  const text = await res.body.text();
  return { status: res.statusCode, text, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Refused with `status`/`code`, the errors given, and nothing reached the upstream. */
function refused(r: Awaited<ReturnType<typeof send>>, status: number, code: string, errors?: unknown[]) {
  expect(r.status).toBe(status);
  expect(r.json.code).toBe(code);
  if (errors) expect(r.json.errors).toEqual(errors);
  expect(upstream.received).toHaveLength(0);
}

describe('inline schemas', () => {
  it('forwards a valid JSON body byte for byte (whitespace, unicode escapes and raw UTF-8 kept)', async () => {
    const body = '{ "name" :\t"Zoë \\u00e9 ✓",\n  "items": [ {"qty": 1}, {"qty":2} ] ,"tags":[] }\n';
    const r = await send('/inline/orders?page=2', body);
    expect(r.status).toBe(200);
    expect(upstream.received).toHaveLength(1);
    const got = upstream.received[0]!;
    expect(got.bodySha256).toBe(sha(body));
    expect(got.bodyBytes).toBe(Buffer.byteLength(body));
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(got.url).toBe('/inline/orders?page=2');
  });

  it('forwards a valid chunked body with its exact length', async () => {
    const body = '{"name":"chunked"}';
    const r = await sendChunked('/inline/x', [Buffer.from(body.slice(0, 5)), Buffer.from(body.slice(5))]);
    expect(r.status).toBe(200);
    expect(upstream.received[0]?.bodySha256).toBe(sha(body));
    expect(upstream.received[0]?.headers['content-length']).toBe(String(body.length));
    expect(upstream.received[0]?.headers['transfer-encoding']).toBeUndefined();
  });

  it('refuses an unexpected field, naming it and not its value', async () => {
    const r = await send('/inline/x', '{"name":"a","isAdmin":"SECRET-VALUE-123"}');
    refused(r, 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '/isAdmin', rule: 'additionalProperties' }]);
    expect(r.text).not.toContain('SECRET-VALUE-123');
  });

  it('refuses a wrong type deep in an array', async () => {
    const r = await send('/inline/x', '{"name":"a","items":[{"qty":"7; DROP TABLE"}]}');
    refused(r, 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '/items/0/qty', rule: 'type' }]);
    expect(r.text).not.toContain('DROP');
  });

  it('refuses a missing required field', async () => {
    refused(await send('/inline/x', '{"tags":["a"]}'), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '/name', rule: 'required' }]);
  });

  it.each([
    ['truncated', '{"name":"a"'],
    ['trailing garbage', '{"name":"a"} x'],
    ['single quotes', "{'name':'a'}"],
    ['a byte-order mark', '\ufeff{"name":"a"}'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d])],
  ])('refuses malformed JSON (%s)', async (_name, body) => {
    refused(await send('/inline/x', body), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '', rule: 'json' }]);
  });

  it.each([
    ['plain', '{"name":"ok","name":"admin"}'],
    ['escaped', '{"name":"ok","n\\u0061me":"admin"}'],
    ['nested', '{"name":"ok","items":[{"qty":1,"qty":2}]}'],
  ])('refuses duplicate keys (%s)', async (_name, body) => {
    refused(await send('/inline/x', body), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '', rule: 'duplicate-key' }]);
  });

  it('refuses nesting deeper than 64 levels, also far deeper, without crashing', async () => {
    const deep = (n: number) => `{"name":"a","nested":${'['.repeat(n)}${']'.repeat(n)}}`;
    refused(await send('/inline/x', deep(65)), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '', rule: 'depth' }]);
    const r = await send('/legacy/x', deep(1000), { headers: {} });
    // report-only route with max_body 1kb: still answered (forwarded), the gateway did not crash
    expect(r.status).toBe(200);
    const ok = await send('/inline/x', deep(62));
    expect(ok.status).toBe(200);
  });

  it('refuses a 10,000-element array beyond maxItems', async () => {
    // OpenAPI route (max_body 64kb): items has maxItems 100; ajv checks the length before any element.
    const body = JSON.stringify({ customer: 'a', items: Array.from({ length: 10_000 }, () => 0) });
    refused(await send('/api/orders', body), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '/items', rule: 'maxItems' }]);
  });

  it('refuses an oversized body by Content-Length before reading it (413)', async () => {
    const body = JSON.stringify({ name: 'x'.repeat(5000) });
    refused(await send('/inline/x', body), 413, 'GW_ERR_BODY_TOO_LARGE', [{ in: 'body', path: '', rule: 'max_body' }]);
  });

  it('refuses an oversized chunked body while it streams (413)', async () => {
    const chunk = Buffer.alloc(1024, 0x20);
    const r = await sendChunked('/inline/x', [Buffer.from('{"name":"a"'), chunk, chunk, chunk, chunk, chunk, Buffer.from('}')]);
    refused(r, 413, 'GW_ERR_BODY_TOO_LARGE', [{ in: 'body', path: '', rule: 'max_body' }]);
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['no content type', null],
    ['a non-UTF-8 charset', 'application/json; charset=iso-8859-1'],
    ['multipart', 'multipart/form-data; boundary=x'],
  ])('refuses a body with %s (415)', async (_name, type) => {
    const r = await send('/inline/x', '{"name":"a"}', { type });
    refused(r, 415, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE', [{ in: 'headers', path: '/content-type', rule: 'content_types' }]);
  });

  it('refuses a body with two Content-Type headers (the app might read the other one)', async () => {
    const body = 'name=a&role=admin';
    const r = await rawRequest(
      gw.port,
      `POST /inline/x HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
    expect(r.status).toBe(415);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'GW_ERR_UNSUPPORTED_MEDIA_TYPE', errors: [{ in: 'headers', path: '/content-type', rule: 'duplicate' }] });
    expect(upstream.received).toHaveLength(0);
  });

  it('closes the connection after refusing an unread body: a request hidden in it is never parsed', async () => {
    const hidden = 'GET /bare/smuggled HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n';
    const r = await rawRequest(
      gw.port,
      `POST /inline/x HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/plain\r\ncontent-length: ${hidden.length}\r\n\r\n${hidden}`,
    );
    expect(r.status).toBe(415);
    expect(r.headers.connection).toBe('close');
    // Not a pause: the refused request's decision record marks the gateway done with it (and the connection).
    await requestFinished(gw, r.headers['x-request-id'] as string, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE');
    expect(gw.logs.filter((l) => l.msg === 'decision' && l.path === '/bare/smuggled')).toEqual([]);
    expect(upstream.received).toHaveLength(0);
  });

  it('accepts JSON with charset=utf-8 and a form body (coerced to the schema, forwarded as sent)', async () => {
    expect((await send('/inline/x', '{"name":"a"}', { type: 'application/json; charset=UTF-8' })).status).toBe(200);
    const form = 'name=J%C3%BCrgen+M&tags=a&tags=b';
    expect((await send('/inline/x', form, { type: 'application/x-www-form-urlencoded' })).status).toBe(200);
    expect(upstream.received[1]?.bodySha256).toBe(sha(form));
  });

  it('refuses a form body with an unexpected field', async () => {
    const r = await send('/inline/x', 'name=a&role=admin', { type: 'application/x-www-form-urlencoded' });
    refused(r, 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '/role', rule: 'additionalProperties' }]);
  });

  it('refuses unexpected or mistyped query parameters', async () => {
    refused(await send('/inline/x?page=1&debug=1', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'query', path: '/debug', rule: 'additionalProperties' }]);
    refused(await send('/inline/x?page=zero', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'query', path: '/page', rule: 'type' }]);
    refused(await send('/inline/x?page=1&page=2', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'query', path: '/page', rule: 'type' }]);
    refused(await send('/inline/x?__proto__=a&__proto__=b', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'query', path: '/__proto__', rule: 'additionalProperties' }]);
    refused(await send('/inline/x', '{"name":"a","__proto__":{"x":1}}'), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '/__proto__', rule: 'additionalProperties' }]);
  });
});

describe('no body schema', () => {
  it('still refuses malformed JSON and duplicate keys; other allowed types pass size-checked', async () => {
    refused(await send('/json-only/x', '{"a":1,"a":2}'), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '', rule: 'duplicate-key' }]);
    refused(await send('/json-only/x', '{"a":'), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '', rule: 'json' }]);
    expect((await send('/json-only/x', '{"anything":[1,{"goes":true}]}')).status).toBe(200);
    expect((await send('/json-only/x', 'free text {', { type: 'text/plain' })).status).toBe(200);
    expect(upstream.received.map((r) => r.bodySha256)).toEqual([sha('{"anything":[1,{"goes":true}]}'), sha('free text {')]);
  });
});

describe('OpenAPI operations', () => {
  const order = (qty: number) => JSON.stringify({ customer: 'acme', items: [{ sku: 'A-1', qty }] });

  it('validates POST /orders against the $ref schema (dereferenced) and forwards a valid one', async () => {
    expect((await send('/api/orders', order(3))).status).toBe(200);
    expect(upstream.received[0]?.bodySha256).toBe(sha(order(3)));
    upstream.received.length = 0;
    refused(await send('/api/orders', order(0)), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '/items/0/qty', rule: 'minimum' }]);
    // OpenAPI 3.0 boolean exclusiveMaximum: 1000 itself is refused
    refused(await send('/api/orders', order(1000)), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '/items/0/qty', rule: 'exclusiveMaximum' }]);
    refused(await send('/api/orders', undefined, { method: 'POST', type: null }), 400, 'GW_ERR_VALIDATION', [{ in: 'body', path: '', rule: 'required' }]);
  });

  it('validates the form media type of the same operation with its own schema', async () => {
    expect((await send('/api/orders', 'customer=acme&qty=2', { type: 'application/x-www-form-urlencoded' })).status).toBe(200);
    upstream.received.length = 0;
    refused(await send('/api/orders', 'customer=acme&qty=0', { type: 'application/x-www-form-urlencoded' }), 400, 'GW_ERR_VALIDATION', [
      { in: 'body', path: '/qty', rule: 'minimum' },
    ]);
  });

  it('checks path and query parameters per operation', async () => {
    expect((await send('/api/orders/12?expand=lines', undefined)).status).toBe(200);
    upstream.received.length = 0;
    refused(await send('/api/orders/abc', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'path', path: '/id', rule: 'type' }]);
    // A ;param is part of the segment the app reads (`12;abc`): validated as such, never as `12`.
    refused(await send('/api/orders/12;abc', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'path', path: '/id', rule: 'type' }]);
    refused(await send('/t/acme/orders/5;x=1', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'path', path: '/id', rule: 'type' }]);
    refused(await send('/api/orders/12?expand=everything', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'query', path: '/expand', rule: 'enum' }]);
    refused(await send('/api/orders?page=0', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'query', path: '/page', rule: 'minimum' }]);
  });

  it('prefers the concrete path /orders/export over /orders/{id} and checks its header', async () => {
    refused(await send('/api/orders/export', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'headers', path: '/x-export-key', rule: 'required' }]);
    expect((await send('/api/orders/export', undefined, { headers: { 'x-export-key': 'k'.repeat(12) } })).status).toBe(200);
  });

  it('refuses a method or path the API does not describe', async () => {
    refused(await send('/api/orders/12', undefined, { method: 'DELETE' }), 400, 'GW_ERR_VALIDATION', [{ in: 'path', path: '', rule: 'operation' }]);
    refused(await send('/api/admin', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'path', path: '', rule: 'operation' }]);
  });

  it('finds operations relative to a templated route path', async () => {
    expect((await send('/t/acme/orders/5', undefined)).status).toBe(200);
    expect(upstream.received[0]?.url).toBe('/t/acme/orders/5');
    upstream.received.length = 0;
    refused(await send('/t/acme/orders/abc', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'path', path: '/id', rule: 'type' }]);
    refused(await send('/t/acme', undefined), 400, 'GW_ERR_VALIDATION', [{ in: 'path', path: '', rule: 'operation' }]);
  });

  it('closes allOf compositions over the names of all their parts', async () => {
    const ok = JSON.stringify({ customer: 'acme', note: null });
    expect((await send('/api/orders/7', ok, { method: 'PUT' })).status).toBe(200);
    upstream.received.length = 0;
    refused(await send('/api/orders/7', JSON.stringify({ customer: 'acme', note: 'x', admin: true }), { method: 'PUT' }), 400, 'GW_ERR_VALIDATION', [
      { in: 'body', path: '/admin', rule: 'additionalProperties' },
    ]);
  });
});

describe('report-only', () => {
  it('forwards an invalid body byte for byte and audits would_reject with the failing fields', async () => {
    const body = '{"name":"a","extra":1}';
    const r = await send('/legacy/x', body);
    expect(r.status).toBe(200);
    expect(upstream.received[0]?.bodySha256).toBe(sha(body));
    await waitFor(() => gw.logs.some((l) => l.msg === 'decision' && l.route === 'legacy' && l.decision === 'would_reject'));
    const rec = gw.logs.filter((l) => l.msg === 'decision' && l.route === 'legacy' && l.decision === 'would_reject').at(-1)!;
    expect(rec.validation).toEqual({ code: 'GW_ERR_VALIDATION', errors: [{ in: 'body', path: '/extra', rule: 'additionalProperties' }] });
    expect(rec.status).toBe(200);
  });

  it('forwards an oversized chunked body whole (held part, then the rest)', async () => {
    const parts = [Buffer.from('{"name":"'), Buffer.alloc(3000, 0x61), Buffer.from('"}')];
    const r = await sendChunked('/legacy/x', parts);
    expect(r.status).toBe(200);
    expect(upstream.received[0]?.bodySha256).toBe(sha(Buffer.concat(parts)));
  });
});

describe('enforce audit and bare routes', () => {
  it('audits a refused request as rejected', async () => {
    await send('/inline/x', '{"name":1}');
    await waitFor(() => gw.logs.some((l) => l.msg === 'decision' && l.route === 'inline' && l.decision === 'rejected' && l.code === 'GW_ERR_VALIDATION'));
  });

  it('refuses a WebSocket upgrade on a validated route (it would reach the app unvalidated)', async () => {
    const r = await rawRequest(
      gw.port,
      `GET /inline/x?debug=1 HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).code).toBe('GW_ERR_BAD_REQUEST');
    expect(upstream.received).toHaveLength(0);
  });

  // Streaming without buffering on such routes is proven at 200 MB in streaming.test.ts.
  it('forwards any body on a route without validate untouched', async () => {
    const r = await sendChunked('/bare/x', [Buffer.from('not json at all'), Buffer.from('!')], 'text/plain');
    expect(r.status).toBe(200);
    expect(upstream.received[0]?.bodySha256).toBe(sha('not json at all!'));
  });
});
