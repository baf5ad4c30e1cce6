// Query spellings against `query_params` rules (issue 17 item 1). `?tenant=acme&x=1;tenant=globex` passed the
// rule (it split on `&` only) while Rack 2, Go < 1.17, Python < 3.9.2 and Perl CGI read `tenant=globex`; PHP
// and Rails read `tenant[]`, ASP.NET `TENANT`. Every spelling's value must pass (else 403, like any policy
// deny); a form or multipart body naming the parameter is refused 400 (Rails `params`, PHP `$_REQUEST`,
// ASP.NET `Request[]` merge it with the query), unless the route validates the body. Nothing refused is
// forwarded; what is forwarded arrives byte for byte (query as sent, body with the same SHA-256).
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRefused, raw, receivedOnce, type Answer } from '../helpers/attack.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const SECRET = randomBytes(32).toString('base64url');
const ISSUER = 'https://idp.query.test';

function config(up: string): string {
  const upstream = `upstream: { url: ${up}, timeout: 2s }`;
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_headers: { assertion: false }
identity_providers:
  corp: { type: jwt, issuer: ${ISSUER}, audiences: [gw], algorithms: [HS256], secret: "\${env:SECRET}" }
routes:
  - name: reports
    match: { path: /reports }
    ${upstream}
    authenticate: [corp]
    authorize: { allow: [{ query_params: { tenant: claims.tenant } }] }
  - name: orgs
    match: { path: /orgs }
    ${upstream}
    authenticate: [corp]
    authorize: { allow: [{ query_params: { org_id: claims.org } }] }
  - name: validated
    match: { path: /validated }
    ${upstream}
    authenticate: [corp]
    authorize: { allow: [{ query_params: { tenant: claims.tenant } }] }
    validate:
      body: { type: object, properties: { tenant: { type: string }, note: { type: string } }, additionalProperties: false }
  - name: plain
    match: { path: /plain }
    ${upstream}
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;
}

let upstream: Upstream;
let gw: TestGateway;
let tok: string;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(config(upstream.url), { env: { SECRET } });
  tok = await new SignJWT({ tenant: 'acme', org: '42' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience('gw')
    .setSubject('erin')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

function send(target: string, o: { method?: string; type?: string; body?: string; headers?: string[] } = {}): () => Promise<Answer> {
  const headers = [`Authorization: Bearer ${tok}`, ...(o.headers ?? [])];
  if (o.type !== undefined) headers.push(`Content-Type: ${o.type}`);
  if (o.body !== undefined && !headers.some((h) => /^transfer-encoding:/i.test(h))) headers.push(`Content-Length: ${Buffer.byteLength(o.body, 'latin1')}`);
  return () => raw(gw, target, { method: o.method ?? 'GET', headers, ...(o.body !== undefined ? { body: o.body } : {}) });
}

async function forwarded(target: string, o: Parameters<typeof send>[1] = {}, bodySha?: string): Promise<void> {
  const res = await send(target, o)();
  expect(res.status, res.body).toBe(200);
  const rec = receivedOnce(upstream, target);
  if (bodySha !== undefined) expect(rec.bodySha256).toBe(bodySha);
}

describe('every spelling of a query_params parameter must pass (403, nothing forwarded)', () => {
  it.each([
    ['; separator', '/reports?tenant=acme&x=1;tenant=globex'],
    ['; only', '/reports?tenant=acme;tenant=globex'],
    ['; before the good one', '/reports?tenant=globex;x=1&tenant=acme'],
    ['PHP/Rails array', '/reports?tenant=acme&tenant[]=globex'],
    ['encoded brackets', '/reports?tenant=acme&tenant%5B%5D=globex'],
    ['indexed array', '/reports?tenant=acme&tenant[0]=globex'],
    ['nested array', '/reports?tenant=acme&tenant[x][y]=globex'],
    ['upper case (ASP.NET)', '/reports?tenant=acme&TENANT=globex'],
    ['mixed case after ;', '/reports?tenant=acme;Tenant=globex'],
    ['leading space', '/reports?tenant=acme&%20tenant=globex'],
    ['leading + (space)', '/reports?tenant=acme&+tenant=globex'],
    ['trailing space', '/reports?tenant=acme&tenant%20=globex'],
    ['trailing +', '/reports?tenant=acme&tenant+=globex'],
    ['trailing tab', '/reports?tenant=acme&tenant%09=globex'],
    ['trailing .', '/reports?tenant=acme&tenant.=globex'],
    ['percent-encoded letter', '/reports?tenant=acme&%74enant=globex'],
    ['NUL-terminated name', '/reports?tenant=acme&tenant%00x=globex'],
    ['dotless ı upper-cases to I (ASP.NET ordinal ignore case)', '/orgs?org_id=42&org_%C4%B1d=7'],
    ['only the spelled parameter', '/reports?TENANT=globex'],
    ['only an array spelling', '/reports?tenant[]=globex'],
  ])('%s: %s', async (_label, target) => {
    await expectRefused(gw, upstream, send(target), 403, 'GW_ERR_FORBIDDEN');
  });

  it.each([
    ['PHP reads tenant.id as org_id-style tenant_id: org.id', '/orgs?org_id=42&org.id=7'],
    ['PHP reads a space as _', '/orgs?org_id=42&org+id=7'],
    ['PHP reads an unclosed [ as _', '/orgs?org_id=42&org[id=7'],
    ['upper case with underscore', '/orgs?org_id=42&ORG_ID=7'],
  ])('PHP name mangling: %s: %s', async (_label, target) => {
    await expectRefused(gw, upstream, send(target), 403, 'GW_ERR_FORBIDDEN');
  });

  it('forwards every spelling when all values pass, and the query exactly as sent', async () => {
    await forwarded('/reports?tenant=acme;TENANT=acme&tenant[]=acme&x=a;b');
    await forwarded('/reports?tenant=acme&q=a%3Bb&next=../x&name=a%2Fb');
    await forwarded('/orgs?org_id=42&organization=7&org=1&id=2');
    // decoded once only: %2574enant is the literal name "%74enant", not tenant
    await forwarded('/reports?tenant=acme&%2574enant=globex');
  });

  it('still denies a missing parameter and a bad plain one', async () => {
    await expectRefused(gw, upstream, send('/reports'), 403, 'GW_ERR_FORBIDDEN');
    await expectRefused(gw, upstream, send('/reports?tenant=globex'), 403, 'GW_ERR_FORBIDDEN');
    await expectRefused(gw, upstream, send('/reports?tenantx=acme'), 403, 'GW_ERR_FORBIDDEN');
  });
});

describe('a form body that names the parameter is refused (400), others are forwarded intact', () => {
  const FORM = 'application/x-www-form-urlencoded';
  const multipart = (name: string, boundary = 'XyZ') =>
    `--${boundary}\r\nContent-Disposition: form-data; name=${name}\r\n\r\nglobex\r\n--${boundary}--\r\n`;

  it.each([
    ['form', FORM, 'tenant=globex'],
    ['form, other field first', FORM, 'note=hi&tenant=globex'],
    ['form, ; separator', FORM, 'note=hi;tenant=globex'],
    ['form, array spelling', FORM, 'tenant%5B%5D=globex'],
    ['form, upper case', `${FORM}; charset=UTF-8`, 'TENANT=globex'],
    ['form, even with the same value', FORM, 'tenant=acme'],
    ['multipart', 'multipart/form-data; boundary=XyZ', multipart('"tenant"')],
    ['multipart, token name', 'multipart/form-data; boundary=XyZ', multipart('tenant')],
    ['multipart, array', 'multipart/form-data; boundary="XyZ"', multipart('"Tenant[]"')],
    ['multipart, RFC 2231 name*', 'multipart/form-data; boundary=XyZ', multipart("*=utf-8''tenant")],
    ['multipart, LF only', 'multipart/form-data; boundary=XyZ', '--XyZ\nContent-Disposition: form-data; name="tenant"\n\nglobex\n--XyZ--\n'],
    ['multipart, a part under another boundary', 'multipart/form-data; boundary=XyZ', `--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n${multipart('"tenant"', 'other')}--XyZ--\r\n`],
    ['multipart, header name in upper case', 'multipart/form-data; boundary=XyZ', '--XyZ\r\nCONTENT-DISPOSITION: form-data;name=TENANT\r\n\r\nglobex\r\n--XyZ--\r\n'],
  ])('%s', async (_label, type, body) => {
    await expectRefused(gw, upstream, send('/reports?tenant=acme', { method: 'POST', type, body }), 400, 'GW_ERR_AMBIGUOUS_REQUEST');
  });

  it('refuses a form body it cannot read the names of (UTF-16, compressed, two Content-Types, no boundary)', async () => {
    const post = (type: string, body: string, headers: string[] = []) => send('/reports?tenant=acme', { method: 'POST', type, body, headers });
    await expectRefused(gw, upstream, post(`${FORM}; charset=utf-16le`, 't\0e\0n\0a\0n\0t\0=\0g\0'), 400, 'GW_ERR_AMBIGUOUS_REQUEST');
    await expectRefused(gw, upstream, post(FORM, 'xx', ['Content-Encoding: gzip']), 400, 'GW_ERR_AMBIGUOUS_REQUEST');
    await expectRefused(gw, upstream, post(FORM, 'note=1', ['Content-Type: text/plain']), 400, 'GW_ERR_AMBIGUOUS_REQUEST');
    await expectRefused(gw, upstream, post('multipart/form-data', multipart('"x"')), 400, 'GW_ERR_AMBIGUOUS_REQUEST');
    await expectRefused(gw, upstream, post('multipart/form-data; boundary="X;y"', multipart('"x"', 'X;y')), 400, 'GW_ERR_AMBIGUOUS_REQUEST');
    await expectRefused(gw, upstream, post('multipart/form-data; boundary=XyZ; boundary=abc', multipart('"x"')), 400, 'GW_ERR_AMBIGUOUS_REQUEST');
  });

  it('refuses a form body over the bound with 413', async () => {
    const body = `note=${'a'.repeat(1024 * 1024 + 10)}`;
    await expectRefused(gw, upstream, send('/reports?tenant=acme', { method: 'POST', type: FORM, body }), 413, 'GW_ERR_BODY_TOO_LARGE');
  });

  it('forwards bodies that do not name it, byte for byte (form, chunked form, multipart with a file, JSON)', async () => {
    const form = 'note=J%C3%BCrgen+M&tenants_list=x&filename=tenant';
    await forwarded('/reports?tenant=acme&a=1', { method: 'POST', type: FORM, body: form }, sha(form));
    const chunked = `${(form.length).toString(16)}\r\n${form}\r\n0\r\n\r\n`;
    await forwarded('/reports?tenant=acme&a=2', { method: 'POST', type: FORM, body: chunked, headers: ['Transfer-Encoding: chunked'] }, sha(form));
    const file = `--XyZ\r\nContent-Disposition: form-data; name="upload"; filename="tenant"\r\nContent-Type: text/plain\r\n\r\nname=tenant\r\ntenant=globex\r\n--XyZ--\r\n`;
    await forwarded('/reports?tenant=acme&a=3', { method: 'POST', type: 'multipart/form-data; boundary=XyZ', body: file }, sha(file));
    const json = '{"tenant":"globex"}';
    await forwarded('/reports?tenant=acme&a=4', { method: 'POST', type: 'application/json', body: json }, sha(json));
  });

  it('a route that validates the body checks it against its schema instead', async () => {
    await forwarded('/validated?tenant=acme', { method: 'POST', type: FORM, body: 'tenant=acme&note=x' }, sha('tenant=acme&note=x'));
  });

  it('a route whose policy reads no query parameter forwards any form body', async () => {
    await forwarded('/plain?tenant=globex', { method: 'POST', type: FORM, body: 'tenant=globex' }, sha('tenant=globex'));
  });
});
