// A response still streaming after its head was sent (SSE, a long download) is a live connection of kind
// `stream` until its body ends: a trigger's end(reason) aborts it on both sides (the client's response is
// cut, the upstream request aborted) and the request's audit record names the reason; shutdown does the
// same with `shutdown`. A response that simply ends leaves the registry with no end_reason in its record.
import http, { type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { scrape } from '../helpers/metrics.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

let upstream: Upstream;
let gw: TestGateway;
/** Per SSE request (by its path): whether the upstream saw it end before its response finished. */
const aborted = new Map<string, boolean>();

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (!req.url?.startsWith('/events')) return false;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    let n = 0;
    const tick = setInterval(() => res.write(`data: ${n++}\n\n`), 20);
    aborted.set(req.url, false);
    res.on('close', () => {
      clearInterval(tick);
      if (!res.writableFinished) aborted.set(req.url as string, true);
    });
    return true;
  });
  gw = await startGateway(`admin: { listen: 127.0.0.1:0 }\n${publicConfig(upstream.url)}`);
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

interface Sse {
  id: string;
  res: IncomingMessage;
  text: () => string;
  /** How the client saw it end: 'end' (complete), 'aborted' (cut). */
  outcome: Promise<'end' | 'aborted'>;
}

function sse(url: string): Promise<Sse> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        const outcome = new Promise<'end' | 'aborted'>((r) => {
          res.once('end', () => r('end'));
          res.once('aborted', () => r('aborted'));
          res.once('error', () => r('aborted'));
        });
        resolve({ id: String(res.headers['x-request-id']), res, text: () => body, outcome });
      })
      .on('error', reject);
  });
}

const streamOf = (id: string) => [...gw.gateway.runtime.live].find((c) => c.ctx.id === id);
const records = (logs: TestGateway['logs'], id: string) => logs.filter((l) => l.audit === true && l.request_id === id);

describe('streaming responses', () => {
  it('registers an SSE response as a live stream; end(reason) aborts it on both sides and the record names the reason', async () => {
    const s = await sse(`${gw.url}/events/1`);
    await waitFor(() => s.text().includes('data: 2'), { what: 'a few events' });
    const conn = streamOf(s.id);
    expect(conn?.kind).toBe('stream');
    expect(conn?.ctx.route?.name).toBe('app');
    const m1 = await scrape(gw.gateway.adminUrl as string);
    expect(m1.value('zt_live_connections', { route: 'app', kind: 'stream' })).toBe(1);
    conn?.end('logout');
    expect(await s.outcome).toBe('aborted');
    await waitFor(() => aborted.get('/events/1') === true, { what: 'the upstream request to be aborted' });
    expect(streamOf(s.id)).toBeUndefined();
    await waitFor(() => records(gw.logs, s.id).length === 1, { what: 'the request record' });
    expect(records(gw.logs, s.id)[0]).toMatchObject({ status: 200, route: 'app', end_reason: 'logout' });
    const m2 = await scrape(gw.gateway.adminUrl as string);
    expect(m2.value('zt_live_connections', { route: 'app', kind: 'stream' })).toBe(0);
    expect(m2.value('zt_live_connection_closes_total', { route: 'app', reason: 'logout' })).toBe(1);
  });

  it('a response that ends by itself leaves the registry, its record without end_reason', async () => {
    const res = await fetch(`${gw.url}/plain`);
    const id = String(res.headers.get('x-request-id'));
    await res.text();
    await waitFor(() => records(gw.logs, id).length === 1, { what: 'the request record' });
    expect(records(gw.logs, id)[0]).not.toHaveProperty('end_reason');
    expect(streamOf(id)).toBeUndefined();
    const m = await scrape(gw.gateway.adminUrl as string);
    expect(m.value('zt_live_connection_closes_total', { route: 'app', reason: 'upstream' })).toBeGreaterThanOrEqual(1);
  });

  it('shutdown ends a stream still running at drain_timeout, recorded as shutdown, within drain_timeout + 1 s', async () => {
    const own = await startGateway(publicConfig(upstream.url).replace('drain_timeout: 2s', 'drain_timeout: 300ms'));
    const s = await sse(`${own.url}/events/2`);
    await waitFor(() => s.text().includes('data: 1'), { what: 'an event' });
    const started = Date.now();
    await own.gateway.stop();
    expect(Date.now() - started).toBeLessThan(1300);
    expect(await s.outcome).toBe('aborted');
    await waitFor(() => aborted.get('/events/2') === true, { what: 'the upstream request to be aborted' });
    expect(records(own.logs, s.id)[0]).toMatchObject({ status: 200, end_reason: 'shutdown' });
  });
});
