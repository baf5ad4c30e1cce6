// Large bodies stream through the gateway both ways without buffering; a client that gives up mid-upload
// makes the gateway abort the upstream request too.
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { digest, generatedBody, listenHttp, MiB, type TestServer } from '../helpers/streams.ts';
import { waitFor } from '../helpers/wait.ts';

// A collection before each RSS sample, so the peak measures what is live rather than how lazy the GC was
// with the (hundreds of MB of) short-lived socket buffers.
v8.setFlagsFromString('--expose-gc');
const gc = (globalThis.gc ?? vm.runInNewContext('gc')) as () => void;

const SIZE = 200 * MiB;

let upstream: Upstream;
let gw: TestGateway;
const sentDownloads: Array<Promise<string>> = [];

// The whole process (client, gateway, upstream) shares one RSS: sample its peak while bodies are in flight.
let rssBase = 0;
let rssPeak = 0;
let sampler: NodeJS.Timeout | undefined;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url !== '/download') return false;
    const body = generatedBody(SIZE);
    sentDownloads.push(body.sha256);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
    body.stream.pipe(res);
    return true;
  });
  gw = await startGateway(publicConfig(upstream.url));
  // Warm up the pool and the code paths so the baseline includes them.
  const warm = await request(`${gw.url}/warm`, { method: 'POST', body: Buffer.alloc(MiB) });
  await warm.body.text();
  gc();
  rssBase = process.memoryUsage().rss;
  rssPeak = rssBase;
  sampler = setInterval(() => {
    gc();
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 100);
});

afterAll(async () => {
  clearInterval(sampler);
  await gw?.close();
  await upstream?.close();
});

describe('streaming large bodies', () => {
  it('streams a 200 MB request body with Content-Length to the upstream intact', async () => {
    const body = generatedBody(SIZE);
    const res = await request(`${gw.url}/upload?kind=fixed`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) },
      body: body.stream,
    });
    expect(res.statusCode).toBe(200);
    const echo = (await res.body.json()) as { bodyBytes: number; bodySha256: string; headers: Record<string, string> };
    expect(echo.bodyBytes).toBe(SIZE);
    expect(echo.bodySha256).toBe(await body.sha256);
    expect(echo.headers['content-length']).toBe(String(SIZE));
    expect(echo.headers['transfer-encoding']).toBeUndefined();
    const rec = upstream.received.at(-1)!;
    expect(rec.url).toBe('/upload?kind=fixed');
    expect(rec.bodyBytes).toBe(SIZE);
  });

  it('streams a 200 MB chunked request body (no Content-Length) to the upstream intact', async () => {
    const body = generatedBody(SIZE);
    const res = await request(`${gw.url}/upload?kind=chunked`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: body.stream,
    });
    expect(res.statusCode).toBe(200);
    const echo = (await res.body.json()) as { bodyBytes: number; bodySha256: string; headers: Record<string, string> };
    expect(echo.bodyBytes).toBe(SIZE);
    expect(echo.bodySha256).toBe(await body.sha256);
    expect(echo.headers['content-length']).toBeUndefined();
    expect(echo.headers['transfer-encoding']).toBe('chunked');
  });

  it('streams a 200 MB response body back intact', async () => {
    const res = await request(`${gw.url}/download`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(SIZE));
    const got = await digest(res.body);
    expect(got.bytes).toBe(SIZE);
    expect(got.sha256).toBe(await sentDownloads.at(-1));
  });

  it('did not buffer: process RSS grew far less than one body', () => {
    const grewMiB = (rssPeak - rssBase) / MiB;
    expect(rssPeak).toBeGreaterThan(0);
    expect(grewMiB).toBeLessThan(100); // one body is 200 MiB; measured ≈ 40 MiB
  });
});

describe('client aborts mid-upload', () => {
  let slow: TestServer;
  let slowGw: TestGateway;
  const seen: Array<{ aborted: boolean; complete: boolean; bytes: number; closed: boolean }> = [];

  beforeAll(async () => {
    slow = await listenHttp((req, res) => {
      const rec = { aborted: false, complete: false, bytes: 0, closed: false };
      seen.push(rec);
      req.on('data', (c: Buffer) => (rec.bytes += c.length));
      req.on('aborted', () => (rec.aborted = true));
      req.on('error', () => undefined);
      req.on('end', () => {
        rec.complete = true;
        res.end('done');
      });
      req.on('close', () => (rec.closed = true));
    });
    slowGw = await startGateway(publicConfig(slow.url));
  });
  beforeEach(() => {
    seen.length = 0; // per test: what the upstream saw in this test only
  });
  afterAll(async () => {
    await slowGw?.close();
    await slow?.close();
  });

  it('aborts the upstream request and keeps serving', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: slowGw.port });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.on('error', () => undefined);
    socket.write(
      `POST /upload HTTP/1.1\r\nHost: 127.0.0.1:${slowGw.port}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${10 * MiB}\r\n\r\n`,
    );
    socket.write(Buffer.alloc(MiB, 1));
    await waitFor(() => seen.length === 1 && (seen[0]?.bytes ?? 0) >= 64 * 1024);
    socket.destroy();
    await waitFor(() => seen[0]!.closed);
    const rec = seen[0]!;
    expect(rec.complete).toBe(false);
    expect(rec.aborted).toBe(true);
    expect(rec.bytes).toBeLessThan(10 * MiB);

    // The access record says the request did not complete.
    await waitFor(() => slowGw.logs.some((l) => l.msg === 'request' && l.path === '/upload'));
    const access = slowGw.logs.find((l) => l.msg === 'request' && l.path === '/upload')!;
    expect(access.completed).toBe(false);
    // A client that leaves is not an upstream failure: no 502 code, no "request failed" warning.
    expect(access.code).toBeUndefined();
    expect(slowGw.logs.filter((l) => l.msg === 'request failed')).toEqual([]);

    const ok = await request(`${slowGw.url}/after`, { method: 'POST', body: 'small' });
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.text()).toBe('done');
    expect(seen.at(-1)).toMatchObject({ complete: true, bytes: 5 });
  });
});

describe('client leaves while the upstream is still answering', () => {
  let held: TestServer;
  let heldGw: TestGateway;
  const arrived: string[] = [];
  const closed: string[] = [];
  const slowReader: { sent: number; done: boolean } = { sent: 0, done: false };

  beforeAll(async () => {
    held = await listenHttp((req, res) => {
      arrived.push(req.url ?? '');
      res.on('close', () => closed.push(req.url ?? ''));
      if (req.url === '/firehose') {
        // Writes as fast as the gateway reads: counts how far it got before the gateway stopped pulling.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 7);
        const pump = (): void => {
          while (!res.destroyed && slowReader.sent < 512 * MiB) {
            slowReader.sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          slowReader.done = true;
        };
        pump();
      }
      // '/hang' never answers.
    });
    heldGw = await startGateway(publicConfig(held.url).replace(', timeout: 2s,', ', timeout: 30s,'));
  });
  beforeEach(() => {
    // per test: what the upstream saw in this test only
    arrived.length = 0;
    closed.length = 0;
    slowReader.sent = 0;
    slowReader.done = false;
  });
  afterAll(async () => {
    await heldGw?.close();
    await held?.close();
  });

  it('before the response head: the upstream request is closed at once, not at the upstream timeout', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: heldGw.port });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.on('error', () => undefined);
    socket.write(`GET /hang HTTP/1.1\r\nHost: 127.0.0.1:${heldGw.port}\r\n\r\n`);
    await waitFor(() => arrived.includes('/hang'));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).not.toContain('/hang');
    const left = Date.now();
    socket.destroy();
    await waitFor(() => closed.includes('/hang'));
    expect(Date.now() - left).toBeLessThan(5_000); // the upstream timeout is 30 s
    await waitFor(() => heldGw.logs.some((l) => l.msg === 'request' && l.path === '/hang'));
    const access = heldGw.logs.find((l) => l.msg === 'request' && l.path === '/hang')!;
    expect(access).toMatchObject({ completed: false });
    expect(access.code).toBeUndefined();
  });

  it('a client that stops reading makes the gateway stop pulling from the upstream (backpressure)', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: heldGw.port });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.on('error', () => undefined);
    socket.pause(); // never reads
    socket.write(`GET /firehose HTTP/1.1\r\nHost: 127.0.0.1:${heldGw.port}\r\n\r\n`);
    await waitFor(() => slowReader.sent > 0);
    // Let the socket buffers on both hops fill up, then check the upstream is held back.
    let last = -1;
    for (let i = 0; i < 50 && last !== slowReader.sent; i++) {
      last = slowReader.sent;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(slowReader.done).toBe(false);
    expect(slowReader.sent).toBeLessThan(64 * MiB);
    socket.destroy();
    await waitFor(() => closed.includes('/firehose'));
  });
});
