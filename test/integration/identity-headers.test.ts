// What the upstream receives as identity: only the gateway's values (client spoofs stripped, custom names
// too), encoded values, refusals of control characters, and the signed X-ZT-Assertion with its JWKS.
import 'reflect-metadata';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { hashKey } from '../../src/authn/api-key.ts';
import { createCA, type CertificateAuthority, type Issued } from '../../tools/pki.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { headerNames, startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';

const ISSUER = 'https://gw.example.test';
const KEY = {
  billing: 'ztk_billing_0123456789abcdef',
  unicode: 'ztk_unicode_0123456789abcdef',
  tab: 'ztk_tab_0123456789abcdef',
  crlf: 'ztk_crlf_0123456789abcdef',
  badGroup: 'ztk_badgroup_0123456789abcdef',
};
const KEYS_FILE = `keys:
  - { id: billing, hash: ${hashKey(KEY.billing)}, subject: svc-billing, groups: [ops, "a,b"] }
  - { id: unicode, hash: ${hashKey(KEY.unicode)}, subject: "jürgen 100%", groups: ["Überwachung", "北京"] }
  - { id: tab, hash: ${hashKey(KEY.tab)}, subject: "a\\tb" }
  - { id: crlf, hash: ${hashKey(KEY.crlf)}, subject: "svc\\r\\nX-ZT-User: admin" }
  - { id: badgroup, hash: ${hashKey(KEY.badGroup)}, subject: svc-ok, groups: ["ops\\u0000admin"] }
`;
const ASSERTION_PEM = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;

let ca: CertificateAuthority;
let meshClient: Issued;
let upstream: Upstream;
let upstream2: Upstream;
let gw: TestGateway;
const agents: Agent[] = [];

function agent(client?: Issued): Agent {
  const a = new Agent({ connect: { ca: ca.cert, servername: 'localhost', ...(client ? { cert: client.cert, key: client.key } : {}) } });
  agents.push(a);
  return a;
}

function yaml(): string {
  const up = (u: Upstream) => `{ url: ${u.url}, timeout: 2s, connect_timeout: 1s }`;
  const auth = `authorize: { allow: [{ authenticated: true }] }`;
  return `listen:
  address: 127.0.0.1:0
  tls: { cert: server.crt, key: server.key, client_ca: clients-ca.crt, client_auth: optional }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: api-keys.yaml, header: X-API-Key }
  mesh: { type: mtls, trust_domain: example.org }
identity_headers: { assertion_key: assertion.pem, issuer: "${ISSUER}" }
routes:
  - name: public
    match: { path: /public }
    upstream: ${up(upstream)}
    public: true
  - name: custom
    match: { path: /custom }
    upstream: ${up(upstream)}
    authenticate: [keys]
    ${auth}
    identity_headers: { user: X-Remote-User, groups: X-Remote-Groups, method: X-Remote-Method }
  - name: noassert
    match: { path: /noassert }
    upstream: ${up(upstream)}
    authenticate: [keys]
    ${auth}
    identity_headers: { assertion: false }
  - name: mesh
    match: { path: /mesh }
    upstream: ${up(upstream)}
    authenticate: [mesh]
    ${auth}
  - name: other
    match: { path: /other }
    upstream: ${up(upstream2)}
    authenticate: [keys]
    ${auth}
  - name: auth
    match: { path: / }
    upstream: ${up(upstream)}
    authenticate: [keys]
    ${auth}
`;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  received: Received | undefined;
}

async function call(path: string, headers: string[], client: Agent = agent(), up: Upstream = upstream): Promise<Answer> {
  const before = up.received.length;
  const res = await request(`${gw.url}${path}`, { dispatcher: client, headers });
  const text = await res.body.text();
  const body = res.headers['content-type']?.toString().includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {};
  return { status: res.statusCode, body, received: up.received.length > before ? up.received.at(-1) : undefined };
}

function values(rec: Received, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if ((rec.rawHeaders[i] as string).toLowerCase() === name) out.push(rec.rawHeaders[i + 1] as string);
  return out;
}

/** Every header name the upstream saw that is an identity header or a `_`/case variant of one. */
function identityLike(rec: Received, extra: RegExp = /^$/): string[] {
  return headerNames(rec).filter((n) => /^x[-_]zt[-_]/.test(n) || extra.test(n));
}

const SPOOFS = [
  'X-ZT-User', 'admin',
  'x-zt-user', 'admin',
  'X_ZT_User', 'admin',
  'x-Zt-uSeR', 'admin',
  'X-ZT-Groups', 'admins',
  'X_zt_auth_method', 'jwt',
  'X-ZT-Email', 'ceo@example.com',
  'X-ZT-Spiffe-Id', 'spiffe://example.org/admin',
  'X-ZT-Assertion', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.',
  'X_ZT_Assertion', 'forged',
];

/**
 * GET the JWKS over TLS (verified against the test CA as "localhost") with an arbitrary Host header and no
 * credentials. Raw, because undici would take the TLS servername from the Host header.
 */
async function fetchJwks(host: string): Promise<{ status: number; type: unknown; jwks: JSONWebKeySet }> {
  const res = await rawRequest(gw.port, `GET /.well-known/zt-gateway/jwks.json HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, {
    tls: { ca: ca.cert, servername: 'localhost' },
  });
  return { status: res.status, type: res.headers['content-type'], jwks: JSON.parse(res.body) as JSONWebKeySet };
}

beforeAll(async () => {
  ca = await createCA();
  const server = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  meshClient = await ca.issue({ cn: 'billing', uris: ['spiffe://example.org/ns/prod/sa/billing'], client: true });
  [upstream, upstream2] = await Promise.all([startUpstream(), startUpstream()]);
  gw = await startGateway(yaml(), {
    files: {
      'server.crt': server.cert,
      'server.key': server.key,
      'clients-ca.crt': ca.cert,
      'api-keys.yaml': KEYS_FILE,
      'assertion.pem': ASSERTION_PEM,
    },
  });
});
afterAll(async () => {
  await Promise.allSettled(agents.map((a) => a.close()));
  await gw?.close();
  await Promise.allSettled([upstream?.close(), upstream2?.close()]);
});

describe('client-sent identity headers never reach the upstream', () => {
  it('on a public route: every X-ZT-* spoof (any case, with _) is dropped and none is added', async () => {
    const a = await call('/public/x', SPOOFS);
    expect(a.status).toBe(200);
    expect(identityLike(a.received!)).toEqual([]);
    expect(JSON.stringify(a.received!.rawHeaders)).not.toMatch(/admin|forged|ceo@/);
  });

  it('on an authenticated route: the upstream sees exactly the gateway-set values, once each', async () => {
    const a = await call('/app', [...SPOOFS, 'authorization', `ApiKey ${KEY.billing}`]);
    expect(a.status).toBe(200);
    const rec = a.received!;
    expect(identityLike(rec).sort()).toEqual(['x-zt-assertion', 'x-zt-auth-method', 'x-zt-groups', 'x-zt-user']);
    expect(values(rec, 'x-zt-user')).toEqual(['svc-billing']);
    expect(values(rec, 'x-zt-groups')).toEqual(['ops,a%2Cb']);
    expect(values(rec, 'x-zt-auth-method')).toEqual(['api_key']);
    const [assertion] = values(rec, 'x-zt-assertion');
    expect(decodeProtectedHeader(assertion as string).alg).toBe('ES256');
    expect(JSON.stringify(rec.rawHeaders)).not.toMatch(/admin|forged|ceo@/);
  });

  it('custom names outside the prefix are set by the gateway; client copies (any case, with _) are dropped', async () => {
    const a = await call('/custom/x', [
      ...SPOOFS,
      'X-Remote-User', 'admin',
      'x-remote-user', 'admin',
      'X_Remote_User', 'admin',
      'X-REMOTE-GROUPS', 'admins',
      'x_remote_method', 'jwt',
      'authorization', `ApiKey ${KEY.billing}`,
    ]);
    expect(a.status).toBe(200);
    const rec = a.received!;
    expect(values(rec, 'x-remote-user')).toEqual(['svc-billing']);
    expect(values(rec, 'x-remote-groups')).toEqual(['ops,a%2Cb']);
    expect(values(rec, 'x-remote-method')).toEqual(['api_key']);
    expect(headerNames(rec).filter((n) => n.startsWith('x_remote'))).toEqual([]);
    // Renamed fields are not also sent under the default names; the assertion keeps its name.
    expect(identityLike(rec).sort()).toEqual(['x-zt-assertion']);
    expect(JSON.stringify(rec.rawHeaders)).not.toMatch(/admin|forged/);
  });
});

describe('identity values', () => {
  it('non-ASCII and "%" are percent-encoded (UTF-8); a comma inside a group is %2C', async () => {
    const a = await call('/app', ['authorization', `ApiKey ${KEY.unicode}`]);
    expect(a.status).toBe(200);
    expect(values(a.received!, 'x-zt-user')).toEqual(['j%C3%BCrgen 100%25']);
    expect(values(a.received!, 'x-zt-groups')).toEqual(['%C3%9Cberwachung,%E5%8C%97%E4%BA%AC']);
    expect(decodeURIComponent(values(a.received!, 'x-zt-user')[0] as string)).toBe('jürgen 100%');
  });

  it.each([
    ['a tab in the subject', KEY.tab],
    ['CR/LF in the subject', KEY.crlf],
    ['a NUL in a group', KEY.badGroup],
  ])('%s → 400 GW_ERR_BAD_IDENTITY_VALUE, nothing forwarded, and the gateway keeps serving', async (_what, key) => {
    const a = await call('/app', ['authorization', `ApiKey ${key}`]);
    expect(a.status).toBe(400);
    expect(a.body.code).toBe('GW_ERR_BAD_IDENTITY_VALUE');
    expect(a.received).toBeUndefined();
    const ok = await call('/app', ['authorization', `ApiKey ${KEY.billing}`]);
    expect(ok.status).toBe(200);
  });
});

describe('X-ZT-Assertion', () => {
  it('the JWKS is served on any host without credentials, public keys only', async () => {
    for (const host of ['anything.example.com', `127.0.0.1:${gw.port}`]) {
      const { status, type, jwks } = await fetchJwks(host);
      expect(status).toBe(200);
      expect(type).toBe('application/jwk-set+json');
      expect(jwks.keys).toHaveLength(1);
      expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(jwks.keys[0]?.d).toBeUndefined();
    }
  });

  it('verifies against the served JWKS with iss, aud = upstream origin, sub and a lifetime of at most 60 s', async () => {
    const { jwks } = await fetchJwks('jwks.example.net');
    const a = await call('/app/x', ['authorization', `ApiKey ${KEY.billing}`]);
    const token = values(a.received!, 'x-zt-assertion')[0] as string;
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid: jwks.keys[0]?.kid, typ: 'JWT' });
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISSUER, audience: upstream.url, algorithms: ['ES256'] });
    expect(payload).toMatchObject({ sub: 'svc-billing', groups: ['ops', 'a,b'], auth_method: 'api_key', idp: 'keys', amr: ['api_key'] });
    expect(payload.exp! - payload.iat!).toBeGreaterThan(0);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
    // Bound to this upstream: another audience does not verify.
    await expect(jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISSUER, audience: upstream2.url })).rejects.toThrow(/aud/);
  });

  it("the audience is each route's own upstream origin", async () => {
    const { jwks } = await fetchJwks('localhost');
    const a = await call('/other/x', ['authorization', `ApiKey ${KEY.billing}`], agent(), upstream2);
    expect(a.status).toBe(200);
    const token = values(a.received!, 'x-zt-assertion')[0] as string;
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISSUER, audience: upstream2.url });
    expect(payload.aud).toBe(upstream2.url);
  });

  it('carries the SPIFFE ID of an mTLS caller', async () => {
    const { jwks } = await fetchJwks('localhost');
    const a = await call('/mesh/x', [], agent(meshClient));
    expect(a.status).toBe(200);
    const { payload } = await jwtVerify(values(a.received!, 'x-zt-assertion')[0] as string, createLocalJWKSet(jwks), { issuer: ISSUER, audience: upstream.url });
    expect(payload).toMatchObject({ sub: 'spiffe://example.org/ns/prod/sa/billing', spiffe_id: 'spiffe://example.org/ns/prod/sa/billing', auth_method: 'mtls' });
  });

  it('with assertion_key set, the kid is the key thumbprint and stays the same across reload', async () => {
    const before = (await fetchJwks('localhost')).jwks;
    const jwk = before.keys[0]!;
    expect(jwk.kid).toBe(await calculateJwkThumbprint({ kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y }));
    writeFileSync(gw.configFile, `${yaml()}\n# touched\n`);
    expect(await gw.gateway.reload()).toBe(true);
    const after = (await fetchJwks('localhost')).jwks;
    expect(after).toEqual(before);
    // Tokens signed after the reload verify with the JWKS an upstream fetched before it.
    const a = await call('/app/y', ['authorization', `ApiKey ${KEY.billing}`]);
    await expect(jwtVerify(values(a.received!, 'x-zt-assertion')[0] as string, createLocalJWKSet(before), { issuer: ISSUER, audience: upstream.url })).resolves.toBeTruthy();
  });

  it('identity_headers.assertion: false on a route → no assertion, identity headers still set', async () => {
    const a = await call('/noassert/x', ['authorization', `ApiKey ${KEY.billing}`, 'X-ZT-Assertion', 'forged']);
    expect(a.status).toBe(200);
    expect(values(a.received!, 'x-zt-assertion')).toEqual([]);
    expect(values(a.received!, 'x-zt-user')).toEqual(['svc-billing']);
  });

  it('a public route gets no assertion', async () => {
    const a = await call('/public/y', []);
    expect(values(a.received!, 'x-zt-assertion')).toEqual([]);
  });
});
