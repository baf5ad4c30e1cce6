// API keys against a real gateway and upstream: Authorization: ApiKey, a configured header, expiry, the
// keys file at load and reload, and the `zt-gateway hash-key` command.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { hashKey } from '../../src/authn/api-key.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { headerNames, startUpstream, type Received, type Upstream } from '../helpers/upstream.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

// 60 keys: the first, a middle and the last entry must all work (the compare walks every entry).
const KEYS = Array.from({ length: 60 }, (_, i) => `ztk_int_${i}_${createHash('sha256').update(String(i)).digest('base64url')}`);
const BILLING_KEY = KEYS[0] as string;
const EXPIRED_KEY = 'ztk_expired_0123456789abcdef';

function keysYaml(extra = ''): string {
  return `keys:
  - { id: billing, hash: ${hashKey(BILLING_KEY)}, subject: svc-billing, groups: [ops, "a,b", "Überwachung"] }
${KEYS.slice(1)
  .map((k, i) => `  - { id: k${i + 1}, hash: "sha256:${hashKey(k)}", subject: svc-${i + 1} }`)
  .join('\n')}
  - { id: old, hash: ${hashKey(EXPIRED_KEY)}, subject: svc-old, expires: "2001-02-03T04:05:06Z" }
${extra}`;
}

let upstream: Upstream;
let gw: TestGateway;

function yaml(up: string): string {
  return `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: api-keys.yaml, header: X-API-Key }
routes:
  - name: pass
    match: { path: /pass }
    upstream: { url: ${up}, timeout: 2s, connect_timeout: 1s }
    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
    identity_headers: { pass_token: true }
  - name: api
    match: { path: /api }
    upstream: { url: ${up}, timeout: 2s, connect_timeout: 1s }
    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
`;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  received: Received | undefined;
}

async function call(path: string, headers: Record<string, string> | string[] = {}, target: TestGateway = gw): Promise<Answer> {
  const before = upstream.received.length;
  const res = await request(`${target.url}${path}`, { headers });
  const text = await res.body.text();
  const body = res.headers['content-type']?.toString().includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {};
  return { status: res.statusCode, headers: res.headers, body, received: upstream.received.length > before ? upstream.received.at(-1) : undefined };
}

function expect401(a: Answer, detail: string | null): void {
  expect(a.status).toBe(401);
  expect(a.body.code).toBe('GW_ERR_UNAUTHENTICATED');
  expect(a.received).toBeUndefined();
  if (detail === null) {
    expect(a.headers['www-authenticate']).toBe('ApiKey realm="zt-gateway"');
  } else {
    expect(a.body.detail).toBe(detail);
    expect(a.headers['www-authenticate']).toBe(`ApiKey realm="zt-gateway", error="invalid_token", error_description="${detail}"`);
  }
}

function values(rec: Received, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if ((rec.rawHeaders[i] as string).toLowerCase() === name) out.push(rec.rawHeaders[i + 1] as string);
  return out;
}

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(yaml(upstream.url), { files: { 'api-keys.yaml': keysYaml() } });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('API keys', () => {
  it('Authorization: ApiKey → 200; the upstream gets subject, groups and method but not the key', async () => {
    const a = await call('/api/orders', { authorization: `ApiKey ${BILLING_KEY}`, 'x-zt-user': 'admin' });
    expect(a.status).toBe(200);
    const rec = a.received!;
    expect(values(rec, 'x-zt-user')).toEqual(['svc-billing']);
    expect(values(rec, 'x-zt-groups')).toEqual(['ops,a%2Cb,%C3%9Cberwachung']);
    expect(values(rec, 'x-zt-auth-method')).toEqual(['api_key']);
    expect(values(rec, 'x-zt-email')).toEqual([]);
    expect(values(rec, 'x-zt-spiffe-id')).toEqual([]);
    expect(headerNames(rec)).not.toContain('authorization');
    expect(JSON.stringify(rec.rawHeaders)).not.toContain(BILLING_KEY);
  });

  it('the configured X-API-Key header works and is not forwarded (nor its _, case and trailing-separator variants)', async () => {
    const a = await call('/api/orders', { 'X-API-Key': BILLING_KEY, 'X_API_Key': 'other', 'x-api-KEY-': 'dropped-too', 'x-api-keys': 'keep-me' });
    expect(a.status).toBe(200);
    const names = headerNames(a.received!);
    expect(names).not.toContain('x-api-key');
    expect(names).not.toContain('x_api_key');
    // A trailing separator is one of the spellings some frameworks trim (issue 17 item 4): dropped as well.
    expect(values(a.received!, 'x-api-key-')).toEqual([]);
    expect(values(a.received!, 'x-api-keys')).toEqual(['keep-me']);
    expect(values(a.received!, 'x-zt-user')).toEqual(['svc-billing']);
    expect(JSON.stringify(a.received!.rawHeaders)).not.toContain(BILLING_KEY);
  });

  it('the first, a middle and the last entry all authenticate; one character off fails', async () => {
    for (const i of [1, 30, KEYS.length - 1]) {
      const a = await call('/api/x', { authorization: `ApiKey ${KEYS[i]}` });
      expect(a.status, `entry ${i}`).toBe(200);
      expect(values(a.received!, 'x-zt-user')).toEqual([`svc-${i}`]);
      const k = KEYS[i] as string;
      const nearMiss = `${k.slice(0, -1)}${k.endsWith('A') ? 'B' : 'A'}`;
      expect401(await call('/api/x', { authorization: `ApiKey ${nearMiss}` }), 'API key is invalid');
    }
  });

  it('a wrong key → 401, never forwarded', async () => {
    expect401(await call('/api/x', { authorization: 'ApiKey ztk_wrong' }), 'API key is invalid');
    expect401(await call('/api/x', { 'x-api-key': 'ztk_wrong' }), 'API key is invalid');
    expect401(await call('/api/x', { authorization: `ApiKey ${hashKey(BILLING_KEY)}` }), 'API key is invalid');
  });

  it('an expired key → 401', async () => {
    expect401(await call('/api/x', { authorization: `ApiKey ${EXPIRED_KEY}` }), 'API key expired');
  });

  it('no key → 401 with the ApiKey challenge; a Bearer token is not an API key', async () => {
    expect401(await call('/api/x'), null);
    expect401(await call('/api/x', { authorization: 'Bearer abc.def.ghi' }), null);
  });

  it('two X-API-Key headers → 401 invalid_request; two Authorization headers → 400', async () => {
    const two = await call('/api/x', ['X-API-Key', BILLING_KEY, 'X-API-Key', BILLING_KEY]);
    expect(two.status).toBe(401);
    expect(two.received).toBeUndefined();
    expect(String(two.headers['www-authenticate'])).toContain('error="invalid_request"');
    const dup = await call('/api/x', ['authorization', `ApiKey ${BILLING_KEY}`, 'authorization', `ApiKey ${BILLING_KEY}`]);
    expect(dup.status).toBe(400);
    expect(dup.body.code).toBe('GW_ERR_AMBIGUOUS_REQUEST');
    expect(dup.received).toBeUndefined();
  });

  it('pass_token: true forwards Authorization as sent, but still never the X-API-Key header', async () => {
    const viaAuth = await call('/pass/x', { authorization: `ApiKey ${BILLING_KEY}` });
    expect(viaAuth.status).toBe(200);
    expect(values(viaAuth.received!, 'authorization')).toEqual([`ApiKey ${BILLING_KEY}`]);
    const viaHeader = await call('/pass/x', { 'x-api-key': BILLING_KEY });
    expect(viaHeader.status).toBe(200);
    expect(headerNames(viaHeader.received!)).not.toContain('x-api-key');
  });
});

describe('the keys file', () => {
  it('an entry with a bad hash stops the config from loading, naming the keys file', async () => {
    const bad = `keys:\n  - { id: a, hash: ${hashKey('x')}, subject: s }\n  - { id: b, hash: not-a-sha256-hex, subject: t }\n`;
    const err = await startGateway(yaml(upstream.url), { files: { 'api-keys.yaml': bad } }).then(
      (g) => g.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const problem = (err as ConfigError).problems[0];
    expect(problem?.path).toBe('identity_providers.keys');
    expect(problem?.message).toMatch(/keys file \S*api-keys\.yaml: keys\.1\.hash: hash must be the hex SHA-256/);
    expect((err as ConfigError).message).toContain('api-keys.yaml');
  });

  it('a keys file with a YAML syntax error or missing entirely is a config error naming it', async () => {
    for (const files of [{ 'api-keys.yaml': 'keys: [ { id: a, hash: b: c' }, {}] as Array<Record<string, string>>) {
      const err = await startGateway(yaml(upstream.url), { files }).then(
        (g) => g.close().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems[0]?.message).toMatch(/keys file \S*api-keys\.yaml: (invalid YAML|cannot read \(ENOENT\))/);
    }
  });

  it('reload picks up an added key and drops a removed one', async () => {
    const added = 'ztk_added_after_start_0123456789';
    const g = await startGateway(yaml(upstream.url), { files: { 'api-keys.yaml': keysYaml() } });
    try {
      expect401(await call('/api/x', { authorization: `ApiKey ${added}` }, g), 'API key is invalid');
      writeFileSync(
        join(g.dir, 'api-keys.yaml'),
        `keys:\n  - { id: added, hash: ${hashKey(added)}, subject: svc-added }\n`,
      );
      expect(await g.gateway.reload()).toBe(true);
      const a = await call('/api/x', { authorization: `ApiKey ${added}` }, g);
      expect(a.status).toBe(200);
      expect(values(a.received!, 'x-zt-user')).toEqual(['svc-added']);
      expect401(await call('/api/x', { authorization: `ApiKey ${BILLING_KEY}` }, g), 'API key is invalid');
      // A broken keys file on reload keeps the running keys.
      writeFileSync(join(g.dir, 'api-keys.yaml'), 'keys: [{ id: x, hash: nope, subject: s }]\n');
      expect(await g.gateway.reload()).toBe(false);
      expect((await call('/api/x', { authorization: `ApiKey ${added}` }, g)).status).toBe(200);
    } finally {
      await g.close();
    }
  });
});

describe('zt-gateway hash-key', () => {
  it('prints a new key and its SHA-256; the pair works in a keys file', async () => {
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'bin/zt-gateway.js'), 'hash-key'], { cwd: ROOT, timeout: 15_000 });
    const key = /^key:\s+(\S+)$/m.exec(stdout)?.[1];
    const hash = /^hash:\s+(\S+)$/m.exec(stdout)?.[1];
    expect(key).toMatch(/^ztk_[A-Za-z0-9_-]{43}$/);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(createHash('sha256').update(key as string, 'utf8').digest('hex')).toBe(hash);
    expect(stderr).toMatch(/store only the hash/);

    const second = await run(process.execPath, [join(ROOT, 'bin/zt-gateway.js'), 'hash-key'], { cwd: ROOT, timeout: 15_000 });
    expect(second.stdout).not.toContain(key as string);

    const g = await startGateway(yaml(upstream.url), {
      files: { 'api-keys.yaml': `keys:\n  - { id: cli, hash: ${hash}, subject: svc-cli, groups: [batch] }\n` },
    });
    try {
      const a = await call('/api/x', { authorization: `ApiKey ${key}` }, g);
      expect(a.status).toBe(200);
      expect(values(a.received!, 'x-zt-user')).toEqual(['svc-cli']);
      expect(values(a.received!, 'x-zt-groups')).toEqual(['batch']);
    } finally {
      await g.close();
    }
  });
});
