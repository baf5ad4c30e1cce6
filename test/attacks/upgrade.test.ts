// `Upgrade` requests that are not WebSocket handshakes (issue 17, items 3 and 7). node:http drops the rest of
// a socket read after an upgrade request it does not take, so a request smuggled in the body of the next one
// arrived at the upstream as a request of its own. Every such request is now answered 400 with
// `Connection: close` and its connection closed: the upstream receives nothing, not even a connection's bytes.
import net from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrivals, expectProblem, expectRefused, expectStillServing, raw, splitResponses } from '../helpers/attack.ts';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { parseRaw } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

let upstream: Upstream;
let gw: TestGateway;
/** Every byte the upstream received on any connection (a refused request must leave this unchanged). */
let upstreamBytes = 0;

beforeAll(async () => {
  upstream = await startUpstream();
  upstream.server.on('connection', (s: Socket) => s.on('data', (d: Buffer) => (upstreamBytes += d.length)));
  // Everything public: on an unfixed gateway the smuggled `GET /admin/smuggled` is forwarded as a request of
  // its own (a front proxy or WAF that saw it as the POST's body never checked it).
  gw = await startGateway(publicConfig(upstream.url));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

interface Conversation {
  text: string;
  /** The gateway closed the connection (not our timeout). */
  closedByServer: boolean;
}

/** Writes each part `gapMs` after the previous one on one connection; reads until the server closes (bounded). */
function converse(parts: readonly string[], gapMs = 150, timeoutMs = 3000): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let closedByServer = false;
    const socket = net.connect({ host: '127.0.0.1', port: gw.port });
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.once('connect', () => {
      parts.forEach((p, i) => setTimeout(() => socket.writable && socket.write(p), i * gapMs));
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => (closedByServer = true));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') closedByServer = true;
      else if (chunks.length === 0) reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer });
    });
  });
}

function host(): string {
  return `Host: 127.0.0.1:${gw.port}\r\n`;
}

const SMUGGLED = 'GET /admin/smuggled HTTP/1.1\r\nHost: adm.x\r\n\r\n';

/** One refusal (400, the code, Connection: close), the connection closed by the gateway, the upstream untouched. */
async function expectOneRefusal(parts: readonly string[], code = 'GW_ERR_BAD_REQUEST', status = 400): Promise<void> {
  const heads = arrivals(upstream).count;
  const bytes = upstreamBytes;
  const done = upstream.received.length;
  const logged = gw.logs.length;
  const c = await converse(parts);
  // What reached the upstream first: on an unfixed gateway, this names the smuggled request.
  expect(upstream.received.slice(done).map((r) => `${r.method} ${r.url}`), 'requests the upstream received').toEqual([]);
  expect(arrivals(upstream).count).toBe(heads);
  expect(upstreamBytes, 'bytes the upstream received').toBe(bytes);
  expect(c.closedByServer, 'the gateway closes the connection').toBe(true);
  const responses = splitResponses(c.text);
  expect(responses.map((r) => r.status)).toEqual([status]);
  const answer = parseRaw(c.text);
  expect(answer.headers.connection).toBe('close');
  const problem = expectProblem(answer, status, code);
  // Logged like a parser refusal (nothing was handed to the pipeline).
  await waitFor(() => gw.logs.slice(logged).find((l) => l.msg === 'client error' && l.code === problem.code), { timeoutMs: 3000, what: 'the client error record' });
}

describe('an Upgrade that is not a WebSocket handshake is refused and its connection closed (item 3)', () => {
  it('the issue repro: h2c upgrade on GET, then a POST whose body (a request) arrives in a later write', async () => {
    expect(SMUGGLED.length).toBe(45);
    const first =
      `GET /public/first HTTP/1.1\r\n${host()}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n` +
      `POST /public/second HTTP/1.1\r\n${host()}Content-Length: 45\r\n\r\n`;
    await expectOneRefusal([first, SMUGGLED]);
    await expectStillServing(gw, upstream);
  });

  it('the same with everything in one write', async () => {
    const all =
      `GET /public/first HTTP/1.1\r\n${host()}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n` +
      `POST /public/second HTTP/1.1\r\n${host()}Content-Length: 45\r\n\r\n${SMUGGLED}`;
    await expectOneRefusal([all]);
  });

  it.each([
    ['Upgrade: foo', ['Connection: Upgrade', 'Upgrade: foo']],
    ['Upgrade: h2c without HTTP2-Settings', ['Connection: Upgrade', 'Upgrade: h2c']],
    ['Upgrade: websocket on a POST', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']],
    ['Upgrade: TLS/1.0 (RFC 2817)', ['Connection: Upgrade', 'Upgrade: TLS/1.0']],
    ['two protocols offered', ['Connection: Upgrade', 'Upgrade: websocket, h2c']],
  ])('%s (taken by the parser as an upgrade), a smuggled request behind it', async (label, headers) => {
    const method = label.includes('POST') ? 'POST' : 'GET';
    const req = `${method} /public/u HTTP/1.1\r\n${host()}${headers.map((h) => `${h}\r\n`).join('')}${method === 'POST' ? 'Content-Length: 0\r\n' : ''}\r\n`;
    await expectOneRefusal([req + `GET /admin/after HTTP/1.1\r\n${host()}\r\n`]);
    await expectStillServing(gw, upstream);
  });

  it.each([
    ['Upgrade: h2c without Connection: upgrade', ['Upgrade: h2c']],
    ['Upgrade: foo without Connection: upgrade', ['Upgrade: foo']],
    ['Upgrade: websocket without Connection: upgrade', ['Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']],
  ])('%s (a plain request to the parser): refused, and nothing pipelined behind it is handled', async (_label, headers) => {
    const req = `GET /public/p HTTP/1.1\r\n${host()}${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
    await expectOneRefusal([req + `GET /admin/after HTTP/1.1\r\n${host()}\r\n`]);
  });

  it('refusals go through the shared attack checks too (status, code, nothing forwarded)', async () => {
    await expectRefused(gw, upstream, () => raw(gw, '/public/h2c', { headers: ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'], close: false }), 400, 'GW_ERR_BAD_REQUEST');
    await expectStillServing(gw, upstream);
  });
});

describe('a WebSocket handshake with a body is refused (item 7)', () => {
  const handshake = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];

  it('Content-Length with a body', async () => {
    const req = `GET /public/ws HTTP/1.1\r\n${host()}${handshake.map((h) => `${h}\r\n`).join('')}Content-Length: 45\r\n\r\n${SMUGGLED}`;
    await expectOneRefusal([req]);
  });

  it('Content-Length whose body arrives in a later write', async () => {
    const req = `GET /public/ws HTTP/1.1\r\n${host()}${handshake.map((h) => `${h}\r\n`).join('')}Content-Length: 45\r\n\r\n`;
    await expectOneRefusal([req, SMUGGLED]);
  });

  it('Transfer-Encoding: chunked', async () => {
    const chunk = `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`;
    const req = `GET /public/ws HTTP/1.1\r\n${host()}${handshake.map((h) => `${h}\r\n`).join('')}Transfer-Encoding: chunked\r\n\r\n${chunk}`;
    await expectOneRefusal([req]);
    await expectStillServing(gw, upstream);
  });
});
