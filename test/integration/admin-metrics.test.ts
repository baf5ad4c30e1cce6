// Who may read /metrics (issue 17, item 9): route names, deny reasons and traffic per route are reconnaissance.
// `admin.metrics: authenticated | public`, authenticated by default whenever the admin API has a token or client
// certificates; the probes /healthz and /readyz never ask for credentials. (Client certificates:
// admin-mtls.test.ts; the cluster primary's token: cluster.test.ts.)
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { validateCommand } from '../../src/cli/validate.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const TOKEN = 'metrics-admin-token-0123456789abcdef';
const TOKEN_HASH = createHash('sha256').update(TOKEN).digest('hex');

let upstream: Upstream;
const gateways: TestGateway[] = [];

function config(admin: string): string {
  return `listen: { address: 127.0.0.1:0, plaintext: true }
admin: ${admin}
shutdown: { drain_timeout: 1s }
routes:
  - name: secret-payroll-route
    match: { path: /app }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    public: true
`;
}

async function start(admin: string): Promise<TestGateway> {
  const gw = await startGateway(config(admin));
  gateways.push(gw);
  // Traffic, so the exposition names the route.
  const res = await request(`${gw.url}/app/x`);
  await res.body.dump();
  return gw;
}

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { headers, method });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(async () => {
  for (const gw of gateways) await gw.close();
  await upstream?.close();
});

describe('/metrics with an admin token configured (authenticated by default)', () => {
  let admin: string;
  beforeAll(async () => {
    admin = (await start(`{ listen: 127.0.0.1:0, token_hash: "${TOKEN_HASH}" }`)).gateway.adminUrl as string;
  });

  it.each([
    ['no credentials', {}],
    ['a wrong token', { authorization: 'Bearer not-the-admin-token' }],
    ['the token hash itself', { authorization: `Bearer ${TOKEN_HASH}` }],
    ['the token as Basic credentials', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }],
    ['the token in another header', { 'x-admin-token': TOKEN }],
  ])('%s: 401, nothing of the exposition', async (_label, headers) => {
    const r = await get(`${admin}/metrics`, headers);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="zt-gateway-admin"');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.text).not.toMatch(/zt_|secret-payroll-route/);
  });

  it('the token in the query string is no credential', async () => {
    expect((await get(`${admin}/metrics?token=${TOKEN}`)).status).toBe(401);
  });

  it('HEAD without credentials: 401 too', async () => {
    expect((await get(`${admin}/metrics`, {}, 'HEAD')).status).toBe(401);
  });

  it('the admin token as a bearer credential: 200 with the exposition', async () => {
    const r = await get(`${admin}/metrics`, { authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/^zt_requests_total\{.*route="secret-payroll-route".*\} 1$/m);
  });

  it('/healthz and /readyz stay open for probes', async () => {
    expect((await get(`${admin}/healthz`)).status).toBe(200);
    expect((await get(`${admin}/readyz`)).status).toBe(200);
  });
});

describe('/metrics: public', () => {
  it('admin.metrics: public opens it next to a token', async () => {
    const gw = await start(`{ listen: 127.0.0.1:0, token_hash: "${TOKEN_HASH}", metrics: public }`);
    const r = await get(`${gw.gateway.adminUrl}/metrics`);
    expect(r.status).toBe(200);
    expect(r.text).toContain('secret-payroll-route');
    // The admin API still wants its token.
    expect((await get(`${gw.gateway.adminUrl}/admin/v1/state`)).status).toBe(401);
  });

  it('without any admin credential configured, /metrics stays open (nothing could authenticate a scrape)', async () => {
    const gw = await start('{ listen: 127.0.0.1:0 }');
    expect((await get(`${gw.gateway.adminUrl}/metrics`)).status).toBe(200);
  });

  it('admin.metrics: authenticated with neither token_hash nor client_ca is a config error', async () => {
    const dir = tempDir('ztgw-metrics-');
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, config('{ listen: 127.0.0.1:0, metrics: authenticated }').replace(upstream.url, 'http://127.0.0.1:1'));
    const err: string[] = [];
    expect(await validateCommand(file, { out: () => undefined, err: (l) => err.push(l) }, {})).toBe(1);
    expect(err.join('\n')).toMatch(/admin\.metrics.*token_hash or admin\.tls\.client_ca/);
  });
});
