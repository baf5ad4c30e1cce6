import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { headerNames, startUpstream, type Upstream } from '../helpers/upstream.ts';

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

describe('forwarding a public route', () => {
  it('forwards the canonical target and rebuilds X-Forwarded-*', async () => {
    const res = await request(`${gw.url}/%61pi/x?q=1&next=../y`, { headers: { 'x-forwarded-for': '6.6.6.6' } });
    expect(res.statusCode).toBe(200);
    const rec = upstream.received.at(-1)!;
    expect(rec.url).toBe('/api/x?q=1&next=../y');
    expect(rec.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(rec.headers['x-forwarded-proto']).toBe('http');
    expect(rec.headers['x-forwarded-host']).toBe(`127.0.0.1:${gw.port}`);
    expect(rec.headers.host).toBe(`127.0.0.1:${upstream.port}`);
    expect(headerNames(rec).filter((n) => n === 'x-forwarded-for')).toHaveLength(1);
    const id = rec.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(id);
    expect(res.headers.server).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
    await res.body.text();
  });
});
