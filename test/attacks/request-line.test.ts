// Hostile request lines, Host headers and framing against a real gateway and upstream (DESIGN.md §4).
// Each refusal is a 400/431 problem JSON with its code, nothing reaches the upstream, and the gateway
// answers a normal request right afterwards. Everything is sent verbatim over a raw socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectRefused,
  expectStillServing,
  raw,
  rawExchange,
  receivedOnce,
  splitResponses,
  type RawOptions,
} from '../helpers/attack.ts';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let gw: TestGateway;

// listen.limits defaults (src/config/schema.ts), stated here so the boundaries below are explicit.
const MAX_HEADER_BYTES = 16_384;
const MAX_TARGET_BYTES = 8192;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(publicConfig(upstream.url));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

/** Node's parser may catch framing conflicts before the gateway does: either code is a refusal. */
const FRAMING = ['GW_ERR_AMBIGUOUS_REQUEST', 'GW_ERR_BAD_REQUEST'] as const;

type Case = [label: string, target: (port: number) => string, opts: (port: number) => RawOptions, status: number, code: string | readonly string[]];

const self = (port: number) => `127.0.0.1:${port}`;

describe('request-target forms', () => {
  it.each<Case>([
    ['absolute-form for another host', () => 'http://evil.example/', () => ({ host: '127.0.0.1' }), 400, 'GW_ERR_BAD_HOST'],
    ['absolute-form for another host, Host is ours', () => 'http://evil.example/x', () => ({}), 400, 'GW_ERR_BAD_HOST'],
    ['absolute-form for our host on another port', () => 'http://127.0.0.1:1/x', () => ({}), 400, 'GW_ERR_BAD_HOST'],
    ['absolute-form with userinfo', (p) => `http://evil@${self(p)}/x`, () => ({}), 400, 'GW_ERR_BAD_HOST'],
    ['absolute-form without a Host header', (p) => `http://${self(p)}/x`, () => ({ host: null }), 400, 'GW_ERR_BAD_HOST'],
    ['absolute-form with a scheme we do not serve', (p) => `https://${self(p)}/x`, () => ({}), 400, 'GW_ERR_BAD_REQUEST'],
    ['asterisk-form OPTIONS *', () => '*', () => ({ method: 'OPTIONS' }), 400, 'GW_ERR_BAD_REQUEST'],
    ['authority-form CONNECT to ourselves', (p) => self(p), () => ({ method: 'CONNECT' }), 400, 'GW_ERR_BAD_METHOD'],
    ['authority-form CONNECT elsewhere', () => 'evil.example:443', () => ({ method: 'CONNECT', host: 'evil.example:443' }), 400, 'GW_ERR_BAD_METHOD'],
    // Not a method token llhttp knows: refused by the parser.
    ['lower-case method', () => '/x', () => ({ method: 'get' }), 400, 'GW_ERR_BAD_REQUEST'],
  ])('%s', async (_label, target, opts, status, code) => {
    const connect = opts(gw.port).method === 'CONNECT'; // answered by the listener's 'connect' handler: no record
    await expectRefused(gw, upstream, () => raw(gw, target(gw.port), opts(gw.port)), status, code, { recorded: !connect });
    await expectStillServing(gw, upstream);
  });

  it('accepts absolute-form for our own host and forwards it in origin-form', async () => {
    const res = await raw(gw, `http://${self(gw.port)}/abs/x?y=1`);
    expect(res.status).toBe(200);
    const rec = receivedOnce(upstream, '/abs/x?y=1');
    expect(rec.headers.host).toBe(`127.0.0.1:${upstream.port}`);
    expect(rec.headers['x-forwarded-host']).toBe(self(gw.port));
  });
});

describe('Host header', () => {
  it.each<[string, string | null]>([
    ['missing Host', null],
    ['empty Host', ''],
    ['userinfo a@b', 'a@b'],
    ['userinfo before our address', '127.0.0.1@evil.example'],
    ['port out of range host:99999', 'host:99999'],
    ['non-numeric port host:abc', 'host:abc'],
    ['empty port host:', 'host:'],
    ['port 0', 'host:0'],
    ['two ports', 'host:80:80'],
    ['signed port', 'host:+80'],
    ['percent-encoded name', 'evil%2eexample'],
    ['slash in name', 'evil.example/x'],
    ['backslash in name', 'evil.example\\x'],
    ['space in name', 'evil example'],
    ['leading dot', '.example.com'],
    ['empty label', 'example..com'],
    ['unterminated IPv6', '[::1'],
    ['junk after IPv6', '[::1]x'],
    ['IPv6 zone id', '[fe80::1%25eth0]'],
    ['bracketed name', '[evil.example]'],
  ])('400 GW_ERR_BAD_HOST for %s', async (_label, host) => {
    await expectRefused(gw, upstream, () => raw(gw, '/x', { host }), 400, 'GW_ERR_BAD_HOST');
    await expectStillServing(gw, upstream);
  });

  it('400 GW_ERR_BAD_HOST for an HTTP/1.0 request without Host', async () => {
    await expectRefused(gw, upstream, () => raw(gw, '/x', { host: null, httpVersion: 'HTTP/1.0' }), 400, 'GW_ERR_BAD_HOST');
    await expectStillServing(gw, upstream);
  });

  it.each([
    ['the same value twice', (p: number) => [`Host: ${self(p)}`]],
    ['a second, different value', () => ['Host: evil.example']],
    ['a second in another case', () => ['HOST: evil.example']],
  ])('400 GW_ERR_BAD_HOST for a duplicate Host: %s', async (_label, extra) => {
    await expectRefused(gw, upstream, () => raw(gw, '/x', { headers: extra(gw.port) }), 400, 'GW_ERR_BAD_HOST');
    await expectStillServing(gw, upstream);
  });

  it('accepts an upper-case Host with a trailing dot and forwards the canonical authority', async () => {
    const res = await raw(gw, '/host/canonical', { host: `LOCALHOST.:${gw.port}` });
    expect(res.status).toBe(200);
    expect(receivedOnce(upstream, '/host/canonical').headers['x-forwarded-host']).toBe(`localhost:${gw.port}`);
  });
});

describe('ambiguous framing and duplicates', () => {
  it.each<[string, RawOptions, number, string | readonly string[]]>([
    ['duplicate Authorization', { headers: ['Authorization: Bearer a', 'Authorization: Bearer b'] }, 400, 'GW_ERR_AMBIGUOUS_REQUEST'],
    ['duplicate Authorization, names in different case', { headers: ['authorization: Basic YTpi', 'AUTHORIZATION: Bearer b'] }, 400, 'GW_ERR_AMBIGUOUS_REQUEST'],
    [
      'Content-Length with Transfer-Encoding',
      { method: 'POST', headers: ['Content-Length: 5', 'Transfer-Encoding: chunked'], body: '0\r\n\r\n' },
      400,
      FRAMING,
    ],
    [
      'Transfer-Encoding with Content-Length',
      { method: 'POST', headers: ['Transfer-Encoding: chunked', 'Content-Length: 5'], body: '0\r\n\r\n' },
      400,
      FRAMING,
    ],
    ['duplicate Content-Length, same value', { method: 'POST', headers: ['Content-Length: 3', 'Content-Length: 3'], body: 'abc' }, 400, FRAMING],
    ['duplicate Content-Length, different values', { method: 'POST', headers: ['Content-Length: 3', 'Content-Length: 4'], body: 'abcd' }, 400, FRAMING],
    ['Content-Length list', { method: 'POST', headers: ['Content-Length: 3, 3'], body: 'abc' }, 400, FRAMING],
    ['signed Content-Length', { method: 'POST', headers: ['Content-Length: +3'], body: 'abc' }, 400, FRAMING],
    ['Transfer-Encoding not ending in chunked', { method: 'POST', headers: ['Transfer-Encoding: chunked, identity'], body: '' }, 400, FRAMING],
    ['duplicate Transfer-Encoding', { method: 'POST', headers: ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], body: '0\r\n\r\n' }, 400, FRAMING],
    // Parser-level refusals of malformed header lines (no gateway code path can see them).
    ['obs-fold continuation line', { headers: ['X-A: a', ' b'] }, 400, 'GW_ERR_BAD_REQUEST'],
    ['space before the colon', { headers: ['Host : evil.example'] }, 400, 'GW_ERR_BAD_REQUEST'],
  ])('%s', async (_label, opts, status, code) => {
    await expectRefused(gw, upstream, () => raw(gw, '/x', opts), status, code);
    await expectStillServing(gw, upstream);
  });

  it('discards the body of a refused request: a request smuggled inside it never reaches the upstream', async () => {
    const host = `Host: ${self(gw.port)}\r\n`;
    const smuggled = `GET /smuggled HTTP/1.1\r\n${host}\r\n`;
    const text = await rawExchange(
      gw.port,
      `POST /a/../admin HTTP/1.1\r\n${host}Content-Length: ${smuggled.length}\r\n\r\n${smuggled}` +
        `GET /after-smuggle HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
    );
    const [refused, after, ...more] = splitResponses(text);
    expect(more).toEqual([]);
    expect(refused?.status).toBe(400);
    expect(JSON.parse(refused?.body ?? '{}').code).toBe('GW_ERR_BAD_PATH');
    expect(after?.status).toBe(200);
    expect(JSON.parse(after?.body ?? '{}').url).toBe('/after-smuggle');
    expect(upstream.received.some((r) => r.url === '/smuggled')).toBe(false);
    receivedOnce(upstream, '/after-smuggle');
  });
});

describe('size limits answer 431', () => {
  it('431 GW_ERR_HEADERS_TOO_LARGE for one header larger than max_header_bytes', async () => {
    const headers = [`X-Big: ${'a'.repeat(MAX_HEADER_BYTES + 1)}`];
    await expectRefused(gw, upstream, () => raw(gw, '/x', { headers }), 431, 'GW_ERR_HEADERS_TOO_LARGE');
    await expectStillServing(gw, upstream);
  });

  it('431 GW_ERR_HEADERS_TOO_LARGE for many headers that together exceed max_header_bytes', async () => {
    const headers = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'v'.repeat(40)}`); // ~20 KB
    await expectRefused(gw, upstream, () => raw(gw, '/x', { headers }), 431, 'GW_ERR_HEADERS_TOO_LARGE');
    await expectStillServing(gw, upstream);
  });

  it('431 GW_ERR_HEADERS_TOO_LARGE for a target one byte over max_target_bytes', async () => {
    const target = `/${'a'.repeat(MAX_TARGET_BYTES)}`;
    expect(target.length).toBe(MAX_TARGET_BYTES + 1);
    await expectRefused(gw, upstream, () => raw(gw, target), 431, 'GW_ERR_HEADERS_TOO_LARGE');
    await expectStillServing(gw, upstream);
  });

  it('forwards a target of exactly max_target_bytes', async () => {
    const target = `/${'b'.repeat(MAX_TARGET_BYTES - 1)}`;
    const res = await raw(gw, target);
    expect(res.status).toBe(200);
    receivedOnce(upstream, target);
  });
});
