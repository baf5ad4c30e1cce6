// tracing.otlp with an OIDC login against a real OpenID Provider: the discovery fetch and the token call
// are client spans under the span of the request that made them, and nothing secret (authorization code,
// state, client secret, tokens, session cookie) reaches the collector.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { CookieJar, loginAtProvider, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };

let op: TestOP;
let upstream: Upstream;
let receiver: OtlpReceiver;
let gw: OidcGateway;

beforeAll(async () => {
  const ca = await createCA('otlp oidc test CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  upstream = await startUpstream();
  receiver = await startOtlpReceiver();
  gw = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-otlp',
    extra: `tracing: { otlp: { endpoint: "${receiver.url}" } }`,
    routes: `  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`,
  });
});

afterAll(async () => {
  await gw?.close();
  await receiver?.close();
  await upstream?.close();
  await op?.close();
});

function serverSpanOf(path: string): Promise<ReceivedSpan> {
  return waitFor(() => receiver.spans.find((s) => s.kind === 2 && s.attributes['url.path'] === path), { what: `the server span of ${path}`, timeoutMs: 6000 });
}

describe('tracing.otlp with an OIDC login', () => {
  it('the discovery and token calls are children of the requests that made them; no secret is exported', async () => {
    const jar = new CookieJar();
    const idpJar = new CookieJar();
    const start = await gw.send('/app/page', { jar, headers: HTML });
    expect(start.status).toBe(302);
    const first = await serverSpanOf('/app/page');
    expect(first.attributes).toMatchObject({ 'zt.route': 'app', 'zt.decision': 'unauthenticated', 'http.response.status_code': 302 });
    const discovery = await waitFor(() => receiver.spans.find((s) => s.parentSpanId === first.spanId && s.attributes['zt.call'] === 'idp discovery'), { what: 'the discovery span' });
    expect(discovery.traceId).toBe(first.traceId);
    expect(discovery.attributes).toMatchObject({ 'http.request.method': 'GET', 'http.response.status_code': 200 });

    const { callback } = await loginAtProvider(op, start.location as string, idpJar, { account: 'alice' });
    const code = new URL(callback).searchParams.get('code') as string;
    const state = new URL(callback).searchParams.get('state') as string;
    const cb = await gw.send(callback.slice(gw.origin.length), { jar, headers: HTML });
    expect(cb.status, cb.text).toBe(302);
    const back = await serverSpanOf('/.zt/callback');
    const token = await waitFor(() => receiver.spans.find((s) => s.parentSpanId === back.spanId && s.attributes['zt.call'] === 'idp token'), { what: 'the token span' });
    expect(token.kind).toBe(3);
    expect(token.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.response.status_code': 200 });

    const page = await gw.send('/app/page', { jar, headers: HTML });
    expect(page.status).toBe(200);
    await waitFor(() => receiver.spans.filter((s) => s.attributes['url.path'] === '/app/page' && s.kind === 2).length === 2, { what: 'the second page span', timeoutMs: 6000 });
    const exported = receiver.bodies.join('\n');
    const cookies = jar.header(`${gw.origin}/app/page`) ?? '';
    const secrets = [code, state, gw.clientSecret, ...cookies.split('; ').map((c) => c.slice(c.indexOf('=') + 1))];
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(8);
      expect(exported).not.toContain(secret);
    }
  });
});
