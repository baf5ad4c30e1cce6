// HTTP versions other than 1.0 and 1.1 (issue 17, item 6). node:http served `HTTP/2.0` and `HTTP/0.9` request
// lines as HTTP/1.1 and refused other versions with a plain 400. Every one is now a 505 GW_ERR_HTTP_VERSION
// with `Connection: close`, the connection closed, nothing forwarded, and the gateway keeps serving.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRefused, expectStillServing, raw, rawMessage, receivedOnce } from '../helpers/attack.ts';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { parseRaw } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(publicConfig(upstream.url));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

/** Sends a keep-alive request and reports the answer and whether the gateway closed the connection itself. */
function sendKeepAlive(data: Buffer, timeoutMs = 3000): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closedByServer = false;
    const socket = net.connect({ host: '127.0.0.1', port: gw.port });
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.once('connect', () => socket.write(data));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => (closedByServer = true));
    socket.on('error', () => (closedByServer = true));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer });
    });
  });
}

describe('versions other than HTTP/1.0 and HTTP/1.1 get 505 and a closed connection', () => {
  it.each([
    // Accepted by node's parser: these reached the handler and were served as HTTP/1.1.
    'HTTP/2.0',
    'HTTP/0.9',
    // Refused by the parser itself (HPE_INVALID_VERSION): the same answer.
    'HTTP/1.2',
    'HTTP/3.0',
    'HTTP/9.9',
    'HTTP/1.x',
    'HTTP/a.b',
    'HTTP/1.10',
    'HTTP/11',
  ])('%s', async (version) => {
    const problem = await expectRefused(gw, upstream, () => raw(gw, '/v/x', { httpVersion: version }), 505, 'GW_ERR_HTTP_VERSION');
    expect(problem.title).toBe('HTTP version not supported');
    // Without Connection: close from the client, the gateway still says close and closes.
    const { text, closedByServer } = await sendKeepAlive(rawMessage(gw.port, '/v/keep-alive', { httpVersion: version, close: false }));
    const answer = parseRaw(text);
    expect(answer.status).toBe(505);
    expect(answer.headers.connection).toBe('close');
    expect(closedByServer).toBe(true);
    expect(upstream.received.some((r) => r.url.startsWith('/v/'))).toBe(false);
    await expectStillServing(gw, upstream);
  });

  it('a pipelined request behind an HTTP/2.0 request line is never handled', async () => {
    const data = Buffer.concat([
      rawMessage(gw.port, '/v/first', { httpVersion: 'HTTP/2.0', close: false }),
      rawMessage(gw.port, '/v/behind', { close: false }),
    ]);
    const { text, closedByServer } = await sendKeepAlive(data);
    expect(parseRaw(text).status).toBe(505);
    expect(text.match(/^HTTP\/1\.1 /gm)).toHaveLength(1);
    expect(closedByServer).toBe(true);
    expect(upstream.received.some((r) => r.url.startsWith('/v/'))).toBe(false);
  });

  it('an upgrade with another version is refused the same way', async () => {
    const headers = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
    await expectRefused(gw, upstream, () => raw(gw, '/v/ws', { httpVersion: 'HTTP/2.0', headers, close: false }), 505, 'GW_ERR_HTTP_VERSION');
  });

  it('HTTP/1.0 and HTTP/1.1 are still forwarded', async () => {
    expect((await raw(gw, '/v10/ok', { httpVersion: 'HTTP/1.0' })).status).toBe(200);
    receivedOnce(upstream, '/v10/ok');
    expect((await raw(gw, '/v11/ok', { httpVersion: 'HTTP/1.1' })).status).toBe(200);
    receivedOnce(upstream, '/v11/ok');
  });
});
