// Rate limits in memory: pre-auth per client IP (X-Forwarded-For believed only from trusted proxies),
// per-route limits per ip | subject | api_key | route, the brute-force lockout, and limits across a reload.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { hashKey } from '../../src/authn/api-key.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const KEYS = {
  alice1: 'ztk_alice_one_0123456789abcdefghijklmnopqrstuv',
  alice2: 'ztk_alice_two_0123456789abcdefghijklmnopqrstuv',
  bob: 'ztk_bob_0123456789abcdefghijklmnopqrstuvwxyz0123',
} as const;

const KEYS_FILE = `keys:
  - { id: alice-1, hash: ${hashKey(KEYS.alice1)}, subject: alice }
  - { id: alice-2, hash: ${hashKey(KEYS.alice2)}, subject: alice }
  - { id: bob-1, hash: ${hashKey(KEYS.bob)}, subject: bob }
`;

const BASE = `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: keys.yaml }
`;

const route = (name: string, path: string, upstream: string, extra: string) => `  - name: ${name}
    match: { path: ${path} }
    upstream: { url: ${upstream}, timeout: 2s, connect_timeout: 1s }
${extra}`;

const PROTECTED = `    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
`;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function get(gw: TestGateway, path: string, opts: { ip?: string; key?: string; xff?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.ip !== undefined) headers['x-forwarded-for'] = opts.ip;
  if (opts.xff !== undefined) headers['x-forwarded-for'] = opts.xff;
  if (opts.key !== undefined) headers.authorization = `ApiKey ${opts.key}`;
  const res = await request(`${gw.url}${path}`, { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** Every strict property of a 429 from the gateway. */
function expectLimited(a: Answer, policy: string, limit: number, windowSec: number): void {
  expect(a.status).toBe(429);
  expect(a.headers['content-type']).toBe('application/problem+json');
  const problem = JSON.parse(a.body) as Record<string, unknown>;
  expect(problem.code).toBe('GW_ERR_RATE_LIMITED');
  expect(problem.status).toBe(429);
  expect(problem.type).toBe('urn:zt-gateway:error:GW_ERR_RATE_LIMITED');
  expect(typeof problem.request_id).toBe('string');
  const retry = a.headers['retry-after'];
  expect(typeof retry).toBe('string');
  expect(retry).toMatch(/^\d+$/);
  const seconds = Number(retry);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(windowSec);
  expect(a.headers['ratelimit-policy']).toBe(`"${policy}";q=${limit};w=${windowSec}`);
  expect(a.headers.ratelimit).toBe(`"${policy}";r=0;t=${seconds}`);
  // A refusal still carries the security headers.
  expect(a.headers['x-content-type-options']).toBe('nosniff');
  expect(a.headers['x-frame-options']).toBe('DENY');
}

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

describe('pre_auth limit per client IP behind a trusted proxy', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(
      `${BASE}trusted_proxies: [127.0.0.1/32]
rate_limits: { pre_auth: { per: ip, limit: 3, window: 1m } }
routes:
${route('pub', '/pub', upstream.url, '    public: true\n')}${route('priv', '/priv', upstream.url, PROTECTED)}`,
      { files: { 'keys.yaml': KEYS_FILE } },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('answers 429 with Retry-After and RateLimit headers after `limit` requests; the upstream never sees it', async () => {
    const ip = '203.0.113.10';
    for (let i = 0; i < 3; i++) expect((await get(gw, `/pub/ok-${i}`, { ip })).status).toBe(200);
    const before = upstream.received.length;
    const refused = await get(gw, '/pub/refused', { ip });
    expectLimited(refused, 'pre_auth', 3, 60);
    expect(upstream.received.length).toBe(before);
    expect(upstream.received.some((r) => r.url === '/pub/refused')).toBe(false);
    // Still limited, whatever the route: the pre-auth limit is per client, before routing to authn.
    expectLimited(await get(gw, '/priv/x', { ip, key: KEYS.alice1 }), 'pre_auth', 3, 60);
    expect(upstream.received.length).toBe(before);
  });

  it('gives each client IP (right-most untrusted X-Forwarded-For entry) its own bucket', async () => {
    const a = '198.51.100.1';
    const b = '198.51.100.2';
    for (let i = 0; i < 3; i++) expect((await get(gw, '/pub/a', { ip: a })).status).toBe(200);
    expect((await get(gw, '/pub/a', { ip: a })).status).toBe(429);
    const ok = await get(gw, '/pub/b', { ip: b });
    expect(ok.status).toBe(200);
    expect(upstream.received.at(-1)?.url).toBe('/pub/b');
    // A client-prepended entry does not change the key: the right-most untrusted entry is `a`.
    expect((await get(gw, '/pub/a', { xff: `10.9.9.9, ${a}` })).status).toBe(429);
    expect((await get(gw, '/pub/a', { xff: `${b}, ${a}` })).status).toBe(429);
  });
});

describe('pre_auth limit with an untrusted client (no trusted_proxies)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(
      `${BASE}rate_limits: { pre_auth: { per: ip, limit: 3, window: 1m } }
routes:
${route('pub', '/', upstream.url, '    public: true\n')}`,
      { files: { 'keys.yaml': KEYS_FILE } },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('ignores a spoofed, rotating X-Forwarded-For: the socket address is the key', async () => {
    for (let i = 0; i < 3; i++) {
      const a = await get(gw, `/spoof-${i}`, { xff: `192.0.2.${i + 1}` });
      expect(a.status).toBe(200);
      expect(upstream.received.at(-1)?.headers['x-forwarded-for']).toBe('127.0.0.1');
    }
    const before = upstream.received.length;
    for (let i = 3; i < 6; i++) expectLimited(await get(gw, `/spoof-${i}`, { xff: `192.0.2.${i + 1}` }), 'pre_auth', 3, 60);
    expectLimited(await get(gw, '/spoof-none'), 'pre_auth', 3, 60);
    expect(upstream.received.length).toBe(before);
  });
});

describe('per-route limits', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(
      `${BASE}trusted_proxies: [127.0.0.1/32]
routes:
${route('by-ip', '/ip', upstream.url, `${PROTECTED}    rate_limit: { per: ip, limit: 2, window: 1m }\n`)}${route(
        'by-subject',
        '/subject',
        upstream.url,
        `${PROTECTED}    rate_limit: { per: subject, limit: 2, window: 1m }\n`,
      )}${route('by-key', '/key', upstream.url, `${PROTECTED}    rate_limit: { per: api_key, limit: 2, window: 30s }\n`)}${route(
        'shared',
        '/route',
        upstream.url,
        `    public: true\n    rate_limit: { per: route, limit: 2, window: 1m }\n`,
      )}`,
      { files: { 'keys.yaml': KEYS_FILE } },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('per: ip counts by client IP, whoever is authenticated', async () => {
    const ip1 = '203.0.113.1';
    expect((await get(gw, '/ip/1', { ip: ip1, key: KEYS.alice1 })).status).toBe(200);
    expect((await get(gw, '/ip/2', { ip: ip1, key: KEYS.bob })).status).toBe(200);
    const before = upstream.received.length;
    expectLimited(await get(gw, '/ip/3', { ip: ip1, key: KEYS.alice2 }), 'by-ip', 2, 60);
    expect(upstream.received.length).toBe(before);
    expect((await get(gw, '/ip/4', { ip: '203.0.113.2', key: KEYS.alice1 })).status).toBe(200);
    expect(upstream.received.at(-1)?.url).toBe('/ip/4');
  });

  it('per: subject shares one bucket between two keys of the same subject; another subject has its own', async () => {
    const ip = '203.0.113.20';
    expect((await get(gw, '/subject/1', { ip, key: KEYS.alice1 })).status).toBe(200);
    expect((await get(gw, '/subject/2', { ip: '203.0.113.21', key: KEYS.alice2 })).status).toBe(200);
    const before = upstream.received.length;
    expectLimited(await get(gw, '/subject/3', { ip: '203.0.113.22', key: KEYS.alice1 }), 'by-subject', 2, 60);
    expectLimited(await get(gw, '/subject/4', { ip, key: KEYS.alice2 }), 'by-subject', 2, 60);
    expect(upstream.received.length).toBe(before);
    // Same IP, other subject: not limited.
    expect((await get(gw, '/subject/5', { ip, key: KEYS.bob })).status).toBe(200);
    expect((await get(gw, '/subject/6', { ip, key: KEYS.bob })).status).toBe(200);
    expect(upstream.received.at(-1)?.headers['x-zt-user']).toBe('bob');
    expectLimited(await get(gw, '/subject/7', { ip, key: KEYS.bob }), 'by-subject', 2, 60);
  });

  it('refused authentications do not spend the subject bucket', async () => {
    const ip = '203.0.113.30';
    // Fresh route bucket for nobody: unauthenticated requests stop at 401 before the per-route limit.
    for (let i = 0; i < 3; i++) {
      const a = await get(gw, '/key/anon', { ip });
      expect(a.status).toBe(401);
      expect((JSON.parse(a.body) as { code: string }).code).toBe('GW_ERR_UNAUTHENTICATED');
    }
  });

  it('per: api_key counts by key id: the same subject with another key is not limited', async () => {
    const ip = '203.0.113.40';
    expect((await get(gw, '/key/1', { ip, key: KEYS.alice1 })).status).toBe(200);
    expect((await get(gw, '/key/2', { ip: '203.0.113.41', key: KEYS.alice1 })).status).toBe(200);
    const before = upstream.received.length;
    expectLimited(await get(gw, '/key/3', { ip, key: KEYS.alice1 }), 'by-key', 2, 30);
    expect(upstream.received.length).toBe(before);
    expect((await get(gw, '/key/4', { ip, key: KEYS.alice2 })).status).toBe(200);
    expect((await get(gw, '/key/5', { ip, key: KEYS.alice2 })).status).toBe(200);
    expectLimited(await get(gw, '/key/6', { ip, key: KEYS.alice2 }), 'by-key', 2, 30);
  });

  it('per: route is one bucket shared by every client', async () => {
    expect((await get(gw, '/route/1', { ip: '192.0.2.1' })).status).toBe(200);
    expect((await get(gw, '/route/2', { ip: '192.0.2.2' })).status).toBe(200);
    const before = upstream.received.length;
    expectLimited(await get(gw, '/route/3', { ip: '192.0.2.3' }), 'shared', 2, 60);
    expectLimited(await get(gw, '/route/4', { ip: '192.0.2.4' }), 'shared', 2, 60);
    expect(upstream.received.length).toBe(before);
    // Other routes are unaffected.
    expect((await get(gw, '/ip/x', { ip: '192.0.2.3', key: KEYS.bob })).status).toBe(200);
  });
});

describe('brute-force lockout (auth_failures)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(
      `${BASE}trusted_proxies: [127.0.0.1/32]
rate_limits: { auth_failures: { limit: 3, window: 1m, block: 2s } }
routes:
${route('priv', '/priv', upstream.url, PROTECTED)}${route('pub', '/pub', upstream.url, '    public: true\n')}`,
      { files: { 'keys.yaml': KEYS_FILE } },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('does not count requests that present no credentials', async () => {
    const ip = '198.51.100.50';
    for (let i = 0; i < 6; i++) {
      const a = await get(gw, '/priv/anon', { ip });
      expect(a.status).toBe(401);
      expect((JSON.parse(a.body) as { code: string }).code).toBe('GW_ERR_UNAUTHENTICATED');
    }
    const ok = await get(gw, '/priv/after-anon', { ip, key: KEYS.alice1 });
    expect(ok.status).toBe(200);
    expect(upstream.received.at(-1)?.url).toBe('/priv/after-anon');
  });

  it('locks an IP out after 3 wrong keys, even for a valid key, until the block expires', async () => {
    const ip = '198.51.100.60';
    for (let i = 0; i < 3; i++) {
      const a = await get(gw, '/priv/guess', { ip, key: `ztk_wrong_guess_${i}` });
      expect(a.status).toBe(401);
      expect((JSON.parse(a.body) as { code: string }).code).toBe('GW_ERR_UNAUTHENTICATED');
      expect(a.headers['www-authenticate']).toContain('error="invalid_token"');
    }
    const lockedAt = Date.now();
    const before = upstream.received.length;
    const locked = await get(gw, '/priv/valid', { ip, key: KEYS.alice1 });
    expect(locked.status).toBe(429);
    expect((JSON.parse(locked.body) as { code: string }).code).toBe('GW_ERR_RATE_LIMITED');
    expect(locked.headers['ratelimit-policy']).toBe('"auth_failures";q=3;w=60');
    const retry = Number(locked.headers['retry-after']);
    expect(Number.isInteger(retry)).toBe(true);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(2);
    expect(upstream.received.length).toBe(before);
    // Another client is not locked out; public routes do not check the lockout.
    expect((await get(gw, '/priv/other', { ip: '198.51.100.61', key: KEYS.alice1 })).status).toBe(200);
    expect((await get(gw, '/pub/x', { ip })).status).toBe(200);

    // Bounded wait for the 2 s block to expire; the lock must hold at least ~1.5 s.
    const status = await waitFor(
      async () => {
        const s = (await get(gw, '/priv/valid-later', { ip, key: KEYS.alice1 })).status;
        return s !== 429 && s;
      },
      { timeoutMs: Math.max(0, 5000 - (Date.now() - lockedAt)), intervalMs: 200, what: 'the 2 s lockout to expire' },
    );
    expect(status).toBe(200);
    expect(Date.now() - lockedAt).toBeGreaterThanOrEqual(1500);
    expect(upstream.received.at(-1)?.url).toBe('/priv/valid-later');
    expect(upstream.received.at(-1)?.headers['x-zt-user']).toBe('alice');
  });

  it('records the lockout refusal in the audit log as rate_limited', async () => {
    const ip = '198.51.100.70';
    for (let i = 0; i < 3; i++) expect((await get(gw, '/priv/g', { ip, key: `ztk_nope_${i}` })).status).toBe(401);
    expect((await get(gw, '/priv/locked-audit', { ip, key: KEYS.bob })).status).toBe(429);
    const rec = gw.logs.find((l) => l.msg === 'decision' && l.path === '/priv/locked-audit');
    expect(rec).toMatchObject({ decision: 'rate_limited', code: 'GW_ERR_RATE_LIMITED', status: 429, client_ip: ip });
  });
});

describe('limits across a config reload', () => {
  let gw: TestGateway;
  const config = (extraRoute: string) => `${BASE}trusted_proxies: [127.0.0.1/32]
rate_limits: { pre_auth: { per: ip, limit: 4, window: 1m } }
routes:
${route('limited', '/limited', upstream.url, `    public: true\n    rate_limit: { per: route, limit: 3, window: 1m }\n`)}${extraRoute}`;

  beforeAll(async () => {
    gw = await startGateway(config(''), { files: { 'keys.yaml': KEYS_FILE } });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('keeps the counters of unchanged limits when the config is reloaded', async () => {
    const ip = '192.0.2.77';
    expect((await get(gw, '/limited/1', { ip })).status).toBe(200);
    expect((await get(gw, '/limited/2', { ip: '192.0.2.78' })).status).toBe(200);
    const generation = gw.gateway.runtime.current.generation;
    writeFileSync(gw.configFile, config(route('extra', '/extra', upstream.url, '    public: true\n')));
    expect(await gw.gateway.reload()).toBe(true);
    expect(gw.gateway.runtime.current.generation).toBe(generation + 1);
    expect((await get(gw, '/extra/x', { ip: '192.0.2.79' })).status).toBe(200); // the reload took effect
    // The route bucket (3) has one left; the pre-auth bucket of `ip` (4) has 3 left.
    expect((await get(gw, '/limited/3', { ip })).status).toBe(200);
    expectLimited(await get(gw, '/limited/4', { ip }), 'limited', 3, 60);
    // Reloading again (unchanged) still does not reset anything.
    expect(await gw.gateway.reload()).toBe(true);
    expectLimited(await get(gw, '/limited/5', { ip: '192.0.2.80' }), 'limited', 3, 60);
    // pre_auth: `ip` has spent 3 of 4 (the route's 429 counted too): one more, then refused pre-auth.
    expect((await get(gw, '/extra/y', { ip })).status).toBe(200);
    expectLimited(await get(gw, '/extra/z', { ip }), 'pre_auth', 4, 60);
  });
});
