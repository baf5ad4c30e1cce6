// Review (attack): passive outlier ejection can be driven by any client until every endpoint is ejected.
//
// src/proxy/balancer.ts Endpoint.failed counts an upstream 502/503/504 ANSWER as an endpoint failure, and
// nothing bounds how many endpoints may be ejected at once (Envoy: max_ejection_percent, default 10%, and a
// 50% panic threshold under which it balances over all hosts anyway). A client that can reach one path
// where the app itself answers 503 (a feature flag off, an app's own dependency down, a slow page that
// times out: all per-request conditions, not endpoint health) sends `consecutive_errors` requests per
// endpoint and every endpoint is ejected: the whole route answers 503 GW_ERR_NO_HEALTHY_UPSTREAM to every
// user for `ejection`, repeatably. Safe behaviour: a client's requests to one failing path never take the
// route down for other paths: at least one endpoint stays in use (or all are used in panic mode), so a
// healthy path keeps answering 200.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let a: Upstream;
let b: Upstream;
let gw: TestGateway;

const app = (_req: unknown, res: import('node:http').ServerResponse, rec: { url: string }): boolean => {
  if (!rec.url.startsWith('/app/feature')) return false;
  res.writeHead(503, { 'content-type': 'text/plain' });
  res.end('feature unavailable');
  return true;
};

beforeAll(async () => {
  a = await startUpstream(app);
  b = await startUpstream(app);
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
log: { level: warn, access: false }
routes:
  - name: app
    match: { path: /app }
    upstream: { endpoints: [${a.url}, ${b.url}], outlier: { consecutive_errors: 3, ejection: 30s } }
    public: true
`);
});

afterAll(async () => {
  await gw?.close();
  await a?.close();
  await b?.close();
});

async function get(path: string): Promise<{ status: number; code: string | undefined }> {
  const res = await request(`${gw.url}${path}`);
  const text = await res.body.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status: res.statusCode, code };
}

describe('review: outlier ejection driven by one client', () => {
  it('control: a healthy path answers 200 from both endpoints', async () => {
    expect((await get('/app/ok')).status).toBe(200);
    expect((await get('/app/ok')).status).toBe(200);
  });

  it('six 503s on /app/feature must not make /app/ok answer 503 GW_ERR_NO_HEALTHY_UPSTREAM', async () => {
    for (let i = 0; i < 6; i++) expect((await get('/app/feature')).status).toBe(503);
    const r = await get('/app/ok');
    expect(r).toEqual({ status: 200, code: undefined });
  });
});
