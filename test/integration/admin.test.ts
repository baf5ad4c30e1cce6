// The admin listener: its own port, /healthz and /readyz (with the package version); the main listener never serves them.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

let upstream: Upstream;
let gw: TestGateway;
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function config(extraRoute = ''): string {
  return `listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0 }
shutdown: { drain_timeout: 2s }
routes:
  - name: app
    match: { path: /app }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
${extraRoute}`;
}

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url !== '/app/slow') return false;
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow done'), 500);
    return true;
  });
  gw = await startGateway(config());
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const res = await request(url);
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as Record<string, unknown> };
}

describe('admin listener', () => {
  it('listens on its own port', () => {
    const admin = new URL(gw.gateway.adminUrl!);
    expect(admin.hostname).toBe('127.0.0.1');
    expect(Number(admin.port)).toBeGreaterThan(0);
    expect(Number(admin.port)).not.toBe(gw.port);
  });

  it('answers /healthz 200', async () => {
    const r = await getJson(`${gw.gateway.adminUrl}/healthz`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('answers /readyz 200 with the package version (not the commit) and the config generation, which a reload advances', async () => {
    const r = await getJson(`${gw.gateway.adminUrl}/readyz`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ready', version, config_generation: 1 });
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(await gw.gateway.reload()).toBe(true);
    const again = await getJson(`${gw.gateway.adminUrl}/readyz?probe=1`);
    expect(again.body).toEqual({ status: 'ready', version, config_generation: 2 });
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    expect((await getJson(`${gw.gateway.adminUrl}/metrics-nope`)).status).toBe(404);
    const post = await request(`${gw.gateway.adminUrl}/healthz`, { method: 'POST', body: 'x' });
    expect(post.statusCode).toBe(405);
    await post.body.text();
  });

  it('is not served on the main listener: /healthz there is 404 GW_ERR_NO_ROUTE and never forwarded', async () => {
    const before = upstream.received.length;
    for (const path of ['/healthz', '/readyz']) {
      const res = await request(`${gw.url}${path}`);
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(((await res.body.json()) as { code: string }).code).toBe('GW_ERR_NO_ROUTE');
    }
    expect(upstream.received.length).toBe(before);
  });

  it('forwards /healthz on the main listener only when a route says so (to the app, not the admin answer)', async () => {
    const other = await startGateway(
      config(`  - name: app-health
    match: { path: =/healthz }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`),
    );
    try {
      const res = await request(`${other.url}/healthz`);
      expect(res.statusCode).toBe(200);
      const echo = (await res.body.json()) as { url: string };
      expect(echo.url).toBe('/healthz');
      expect(upstream.received.at(-1)!.url).toBe('/healthz');
    } finally {
      await other.close();
    }
  });

  it('answers /readyz 503 once stop has begun (while draining), then closes', async () => {
    const inflight = request(`${gw.url}/app/slow`);
    await waitFor(() => upstream.received.some((r) => r.url === '/app/slow'));
    const adminUrl = gw.gateway.adminUrl!;
    const stopping = gw.gateway.stop();
    try {
      const ready = await getJson(`${adminUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({ status: 'not ready', version });
      const health = await getJson(`${adminUrl}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      const res = await inflight;
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('slow done');
      await stopping;
    }
    expect(gw.gateway.adminUrl).toBeUndefined();
    await expect(request(`${adminUrl}/healthz`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
