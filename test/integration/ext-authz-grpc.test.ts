// Envoy ext_authz over gRPC (`ext_authz:`): a grpc-js client built from the vendored protos sends the
// CheckRequests Envoy's HTTP filter sends to a real gateway. Allowed: identity headers with overwrite semantics,
// headers_to_remove naming the spoofable spellings the answer does not set (Envoy removes after it adds).
// Denied: status, problem body, gRPC code. Refused targets and header lines: 400 like /.zt/verify. Callers:
// trusted_proxies (judged on the reloaded config) or a client certificate from ext_authz.tls.client_ca.
// The gateway never forwards in this mode: the app behind Envoy receives nothing from it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, type Issued } from '../../tools/pki.ts';
import { applyLikeEnvoy, checkClient, type CheckClient, type CheckResponse } from '../helpers/envoy-check.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startIdp, type TestIdp } from '../helpers/idp.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

let app: Upstream;
let idp: TestIdp;
let gw: TestGateway;
let caCert: string;
let clientCert: Issued;
let strangerCert: Issued;
const clients: CheckClient[] = [];

const config = (trusted: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
trusted_proxies: [${trusted}]
ext_authz:
  listen: 127.0.0.1:0
  tls: { cert: ext.crt, key: ext.key, client_ca: envoy-ca.crt }
identity_providers:
  corp: { type: jwt, issuer: "${idp.issuer}", audiences: [gw], algorithms: [ES256], jwks_uri: "${idp.jwksUri}" }
routes:
  - name: app
    match: { host: app.example.com, path: /app }
    upstream: { url: ${app.url} }
    authenticate: [corp]
    authorize: { allow: [{ subject: alice }] }
`;

function client(identity?: Issued): CheckClient {
  const creds = grpc.credentials.createSsl(Buffer.from(caCert), identity ? Buffer.from(identity.key) : null, identity ? Buffer.from(identity.cert) : null);
  const c = checkClient(`127.0.0.1:${gw.gateway.extAuthzPort}`, creds);
  clients.push(c);
  return c;
}

const headerMap = (opts: { headers?: Array<{ header: { key: string; value?: string } }> } | undefined) =>
  Object.fromEntries((opts?.headers ?? []).map((h) => [h.header.key, h.header.value ?? '']));

function denial(r: CheckResponse) {
  const body = JSON.parse(r.denied_response?.body ?? '{}') as Record<string, unknown>;
  return { grpc: r.status?.code, http: r.denied_response?.status?.code, code: body.code, status: body.status, ok: r.ok_response };
}

const audits = () => gw.logs.filter((l) => l.audit === true || l.decision !== undefined);

let trusted: CheckClient;
beforeAll(async () => {
  app = await startUpstream();
  idp = await startIdp();
  const serverCa = await createCA('ext_authz server CA');
  const envoyCa = await createCA('envoy client CA');
  const otherCa = await createCA('some other CA');
  const leaf = await serverCa.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  clientCert = await envoyCa.issue({ cn: 'envoy', client: true });
  strangerCert = await otherCa.issue({ cn: 'envoy', client: true });
  caCert = serverCa.cert;
  gw = await startGateway(config('127.0.0.1/32'), { files: { 'ext.crt': leaf.cert, 'ext.key': leaf.key, 'envoy-ca.crt': envoyCa.cert } });
  trusted = client();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await gw?.close();
  await idp?.close();
  await app?.close();
});

describe('ext_authz gRPC: decisions', () => {
  it('listens on its own port over TLS, started with the gateway', () => {
    expect(gw.gateway.extAuthzPort).toBeGreaterThan(0);
    expect(gw.gateway.extAuthzPort).not.toBe(gw.port);
    expect(gw.logs.find((l) => l.msg === 'ext_authz gRPC listening')).toMatchObject({ tls: true });
  });

  it('allowed: OK, the identity headers overwrite, headers_to_remove lists the spoofable names it does not set', async () => {
    const token = await idp.sign({}, { sub: 'alice' });
    const r = await trusted.check({ path: '/app/orders?id=7', headers: { authorization: `Bearer ${token}` }, id: 'envoy-req-1' });
    expect(r.status?.code ?? 0).toBe(0);
    expect(r.http_response).toBe('ok_response');
    const ok = r.ok_response ?? {};
    const set = headerMap(ok);
    expect(set['x-zt-user']).toBe('alice');
    expect(set['x-zt-auth-method']).toBe('jwt');
    expect(set['x-zt-assertion']).toMatch(/^ey/);
    for (const h of ok.headers ?? []) {
      expect(h.append_action, h.header.key).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
      expect(h.append, h.header.key).toEqual({ value: false });
    }
    const removed = ok.headers_to_remove ?? [];
    expect(removed.filter((n) => n in set)).toEqual([]); // removing a header it sets would delete it
    expect(removed).toEqual(expect.arrayContaining(['x_zt_user', 'x-zt-spiffe-id', 'x_zt_assertion']));
    expect(app.received).toEqual([]);
    await waitFor(() => audits().some((l) => l.request_id === 'envoy-req-1'), { what: 'the audit record' });
    expect(audits().find((l) => l.request_id === 'envoy-req-1')).toMatchObject({ status: 200, subject: 'alice', route: 'app', forward_auth: true, client_ip: '203.0.113.7' });
  });

  it('spoofed identity headers in the request never survive: overwritten or removed, every spelling', async () => {
    const token = await idp.sign({}, { sub: 'alice' });
    const sent = {
      authorization: `Bearer ${token}`,
      'x-zt-user': 'mallory',
      x_zt_user: 'mallory',
      'x-zt-groups': 'admins',
      'x-zt-role': 'admin',
      x_zt_email: 'boss@corp.example',
      'x-zt-assertion': 'forged',
      accept: 'text/html',
    };
    const r = await trusted.check({ path: '/app/', headers: sent });
    expect(r.status?.code ?? 0).toBe(0);
    const upstream = applyLikeEnvoy(sent, r.ok_response ?? {});
    expect(upstream['x-zt-user']).toBe('alice');
    expect(upstream['x-zt-assertion']).not.toBe('forged');
    expect(Object.keys(upstream).filter((k) => k.replaceAll('_', '-').startsWith('x-zt-')).sort()).toEqual(
      Object.keys(headerMap(r.ok_response)).filter((k) => k.startsWith('x-zt-')).sort(),
    );
    expect(upstream.accept).toBe('text/html');
    expect(r.ok_response?.headers_to_remove).toEqual(expect.arrayContaining(['x_zt_user', 'x-zt-groups', 'x-zt-role', 'x_zt_email']));
    expect(r.ok_response?.headers_to_remove).not.toContain('x-zt-user');
  });

  it('denied without credentials: UNAUTHENTICATED, 401 with the problem body and WWW-Authenticate', async () => {
    const r = await trusted.check({ path: '/app/orders', id: 'envoy-req-2' });
    expect(denial(r)).toEqual({ grpc: 16, http: 'Unauthorized', code: 'GW_ERR_UNAUTHENTICATED', status: 401, ok: undefined });
    const headers = headerMap(r.denied_response);
    expect(headers['content-type']).toBe('application/problem+json');
    expect(headers['www-authenticate']).toContain('Bearer');
    expect(headers['x-request-id']).toBe('envoy-req-2');
    expect(headers['content-length']).toBeUndefined();
    expect(JSON.parse(r.denied_response?.body ?? '{}')).toMatchObject({ request_id: 'envoy-req-2' });
  });

  it('denied by policy: PERMISSION_DENIED, 403 — and the spoofed identity header does not make it alice', async () => {
    const token = await idp.sign({}, { sub: 'bob' });
    const r = await trusted.check({ path: '/app/orders', headers: { authorization: `Bearer ${token}`, 'x-zt-user': 'alice' } });
    expect(denial(r)).toEqual({ grpc: 7, http: 'Forbidden', code: 'GW_ERR_FORBIDDEN', status: 403, ok: undefined });
  });

  it('a path no route matches and the gateway\'s own paths: NOT_FOUND, 404', async () => {
    for (const path of ['/other', '/.zt/verify', '/.zt/ext-authz/app']) {
      expect(denial(await trusted.check({ path })), path).toMatchObject({ grpc: 5, http: 'NotFound', code: 'GW_ERR_NO_ROUTE' });
    }
  });

  it('refused targets: dot segments, encoded slashes, backslashes, empty segments, absolute form, fragments (400)', async () => {
    const token = await idp.sign({}, { sub: 'alice' });
    const paths = ['/app/../admin', '/app/%2e%2e/admin', '/app/.%2E/admin', '/app/..;x/admin', '/app%2fadmin', '/app/%5Cadmin', '/app\\admin', '/app//admin', 'http://app.example.com/app/x', '/app/x#frag', '/app/%00', '/app/%c0%ae%c0%ae/x', ''];
    for (const path of paths) {
      const r = await trusted.check({ path, headers: { authorization: `Bearer ${token}` } });
      expect(denial(r), JSON.stringify(path)).toMatchObject({ grpc: 3, http: 'BadRequest', status: 400, ok: undefined });
    }
    expect(app.received).toEqual([]);
  });

  it('refused requests: bad method, host with userinfo, other schemes, header lines node:http would refuse (400/431)', async () => {
    const token = await idp.sign({}, { sub: 'alice' });
    const auth = { authorization: `Bearer ${token}` };
    const cases: Array<[object, string, number]> = [
      [{ path: '/app/', method: 'CONNECT', headers: auth }, 'GW_ERR_BAD_METHOD', 400],
      [{ path: '/app/', method: 'G T', headers: auth }, 'GW_ERR_BAD_METHOD', 400],
      [{ path: '/app/', host: 'alice@app.example.com', headers: auth }, 'GW_ERR_BAD_HOST', 400],
      [{ path: '/app/', scheme: 'ftp', headers: auth }, 'GW_ERR_BAD_REQUEST', 400],
      [{ path: '/app/', headers: { ...auth, 'x-note': 'a\r\nx-zt-user: alice' } }, 'GW_ERR_BAD_REQUEST', 400],
      [{ path: '/app/', headers: { ...auth, 'bad name': 'x' } }, 'GW_ERR_BAD_REQUEST', 400],
      [{ path: '/app/', headers: { ...auth, 'x-big': 'a'.repeat(20_000) } }, 'GW_ERR_HEADERS_TOO_LARGE', 431],
      [{ path: '/app/', rawHeaders: [['authorization', auth.authorization], ['Authorization', 'Bearer other']] }, 'GW_ERR_AMBIGUOUS_REQUEST', 400],
    ];
    for (const [args, code, status] of cases) {
      const r = await trusted.check(args);
      expect(denial(r), JSON.stringify(args).slice(0, 120)).toMatchObject({ code, status, ok: undefined });
    }
  });

  it('a CheckRequest without HTTP attributes (the network filter) is refused, not allowed', async () => {
    const r = await trusted.check({ attributes: { source: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } } });
    expect(denial(r)).toMatchObject({ grpc: 3, status: 400 });
  });

  it('header_map (encode_raw_headers) is read like the headers map', async () => {
    const token = await idp.sign({}, { sub: 'alice' });
    const r = await trusted.check({ path: '/app/', rawHeaders: [['authorization', `Bearer ${token}`], ['x_zt_user', 'mallory']] });
    expect(headerMap(r.ok_response)['x-zt-user']).toBe('alice');
    expect(r.ok_response?.headers_to_remove).toContain('x_zt_user');
  });
});

describe('ext_authz gRPC: who may ask', () => {
  it('a caller outside trusted_proxies without a certificate: PERMISSION_DENIED, no CheckResponse (judged on the reloaded config)', async () => {
    writeFileSync(gw.configFile, config('10.9.9.9/32'));
    expect(await gw.gateway.reload()).toBe(true);
    const token = await idp.sign({}, { sub: 'alice' });
    const err = (await trusted.check({ path: '/app/', headers: { authorization: `Bearer ${token}` } }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    await waitFor(() => audits().some((l) => l.code === 'GW_ERR_FORBIDDEN' && l.status === 403), { what: 'the refusal record' });
  });

  it('a client certificate from another CA: PERMISSION_DENIED', async () => {
    const token = await idp.sign({}, { sub: 'alice' });
    const err = (await client(strangerCert).check({ path: '/app/', headers: { authorization: `Bearer ${token}` } }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('a client certificate from ext_authz.tls.client_ca: answered, from any address', async () => {
    const token = await idp.sign({}, { sub: 'alice' });
    const r = await client(clientCert).check({ path: '/app/', headers: { authorization: `Bearer ${token}` } });
    expect(r.status?.code ?? 0).toBe(0);
    expect(headerMap(r.ok_response)['x-zt-user']).toBe('alice');
  });

  it('trusted again after the next reload', async () => {
    writeFileSync(gw.configFile, config('127.0.0.1/32'));
    expect(await gw.gateway.reload()).toBe(true);
    const r = await trusted.check({ path: '/app/' });
    expect(denial(r)).toMatchObject({ grpc: 16, status: 401 });
  });

  it('a reload rotates the listener certificate in place: new connections get the new one', async () => {
    const nextCa = await createCA('ext_authz server CA, rotated');
    const leaf = await nextCa.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    writeFileSync(join(gw.dir, 'ext.crt'), leaf.cert);
    writeFileSync(join(gw.dir, 'ext.key'), leaf.key);
    expect(await gw.gateway.reload()).toBe(true);
    const port = gw.gateway.extAuthzPort;
    const rotated = checkClient(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(nextCa.cert)));
    clients.push(rotated);
    expect(denial(await rotated.check({ path: '/app/' }))).toMatchObject({ grpc: 16, status: 401 });
    // A client that trusts only the old CA cannot connect any more.
    const stale = checkClient(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(caCert)));
    clients.push(stale);
    const err = (await stale.check({ path: '/app/' }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    caCert = nextCa.cert;
  });

  it('stops with the gateway', async () => {
    const port = gw.gateway.extAuthzPort;
    await gw.close();
    const c = checkClient(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(caCert)));
    clients.push(c);
    const err = (await c.check({ path: '/app/' }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
  });
});
