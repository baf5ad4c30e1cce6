// Cross-site requests cannot ride a cookie session (issue 16): a real oidc-provider login gives a session
// cookie; unsafe methods and WebSocket upgrades it authenticates pass only from the gateway's own origin
// (Sec-Fetch-Site first, Origin as the fallback, neither header: not a browser). Every refusal is a 403
// GW_ERR_CROSS_SITE that the upstream never sees; bearer tokens are not affected; the route's exceptions
// (cross_origin.allow, cors.origins with credentials, protect: false); forward-auth; POST-only logout.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createCA } from '../../tools/pki.ts';
import { signHs256 } from '../helpers/idp.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { CookieJar, loginAtProvider, send, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

const HTML = { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };
const JWT_SECRET = 'cross-site-jwt-secret-0123456789abcdef';
const JWT_ISSUER = 'https://ci.example.test';
const UNSAFE = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;

let ca: string;
let op: TestOP;
let upstream: Upstream;
let g: OidcGateway;
let own: string;
let cookie: string;
let bearer: string;
/** Upgrade requests the upstream received (by path). */
const upgrades: string[] = [];

function routes(up: string): string {
  const base = `    upstream: { url: ${up} }
    authenticate: [corp, ci]
    authorize: { allow: [{ authenticated: true }] }`;
  return `  - name: partner
    match: { path: /partner }
${base}
    cross_origin: { allow: ["https://App.example.com:443"] }
  - name: spa
    match: { path: /spa }
${base}
    cors: { origins: [https://spa.example.com], credentials: true, methods: [GET, POST] }
  - name: spa-anonymous-cors
    match: { path: /spa-nocred }
${base}
    cors: { origins: [https://spa.example.com], methods: [GET, POST] }
  - name: open
    match: { path: /open }
${base}
    cross_origin: { protect: false }
  - name: app
    match: { path: / }
${base}
`;
}

beforeAll(async () => {
  const authority = await createCA('cross-site CA');
  const leaf = await authority.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  ca = authority.cert;
  op = await startOidcProvider({ gatewayCa: ca });
  upstream = await startUpstream();
  const wss = new WebSocketServer({ noServer: true });
  upstream.server.on('upgrade', (req: IncomingMessage, socket, head) => {
    upgrades.push(req.url ?? '');
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(`echo:${d.toString()}`)));
  });
  g = await startOidcGateway(op, { ca, ...leaf }, {
    clientId: 'gw-xsite',
    providers: `  ci: { type: jwt, issuer: "${JWT_ISSUER}", audiences: [gw], algorithms: [HS256], secret: "\${file:jwt.secret}" }`,
    files: { 'jwt.secret': JWT_SECRET },
    extra: 'trusted_proxies: [127.0.0.1/32]\ngrants:\n  ops: { approvers: [ops-leads], max_duration: 2h }',
    routes: routes(upstream.url),
  });
  own = g.origin;
  const jar = new CookieJar();
  const idp = new CookieJar();
  const start = await g.send('/app/start', { jar, headers: HTML });
  expect(start.status).toBe(302);
  const { callback } = await loginAtProvider(op, start.location as string, idp, { account: 'bob' });
  const cb = await g.send(callback.slice(g.origin.length), { jar, headers: HTML });
  expect(cb.status, cb.text).toBe(302);
  cookie = jar.header(`${own}/`) as string;
  expect(cookie).toContain('__Host-zt=');
  bearer = await signHs256(JWT_SECRET, JWT_ISSUER, 'ci-bot');
});

afterAll(async () => {
  await g?.close();
  await upstream?.close();
  await op?.close();
});

/**
 * How a page's request looks, by where the page is. Listed when the tests are collected (before the gateway
 * has a port): `{own}` and `{port}` are filled in by `page()` when a test runs.
 */
const CASES: Array<[string, Record<string, string>, 'pass' | 'refuse']> = [
  ['same-origin (Sec-Fetch-Site)', { 'sec-fetch-site': 'same-origin', origin: '{own}' }, 'pass'],
  ['same-origin (Origin only, an older browser)', { origin: '{own}' }, 'pass'],
  ['typed in / bookmark (Sec-Fetch-Site: none)', { 'sec-fetch-site': 'none' }, 'pass'],
  ['no browser headers (curl, a script)', {}, 'pass'],
  ['same-site sibling host', { 'sec-fetch-site': 'same-site', origin: 'https://intranet.localhost:{port}' }, 'refuse'],
  ['same host, another port (Origin only)', { origin: 'https://localhost:{port+1}' }, 'refuse'],
  ['same host over http (Origin only)', { origin: 'http://localhost:{port}' }, 'refuse'],
  ['cross-site', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, 'refuse'],
  ['cross-site (Origin only)', { origin: 'https://evil.example' }, 'refuse'],
  ['Origin: null (sandboxed frame, data: URL)', { origin: 'null' }, 'refuse'],
  ['Origin: null with Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site', origin: 'null' }, 'refuse'],
  ['Sec-Fetch-Site same-site with our own Origin spelled by the attacker', { 'sec-fetch-site': 'same-site', origin: '{own}' }, 'refuse'],
];

function page(headers: Record<string, string>): Record<string, string> {
  const port = new URL(own).port;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = v.replace('{own}', own).replace('{port+1}', String(Number(port) + 1)).replace('{port}', port);
  return out;
}

/** Sends one request with a fresh path; returns the status, code and how many times the upstream got it. */
async function attempt(method: string, prefix: string, headers: Record<string, string>, auth: 'cookie' | 'bearer') {
  const path = `${prefix}/${randomUUID()}`;
  const r = await g.send(path, {
    method,
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', ...(auth === 'bearer' ? { authorization: `Bearer ${bearer}` } : {}) },
    ...(auth === 'cookie' ? { cookie } : {}),
    body: 'subject=alice&action=suspend',
  });
  return { status: r.status, code: r.json?.code as string | undefined, reached: upstream.received.filter((x) => x.url === path).length };
}

describe('cookie session: unsafe methods from another origin are refused before the upstream', () => {
  for (const method of UNSAFE) {
    for (const [name, headers, expected] of CASES) {
      it(`${method} ${name} → ${expected === 'pass' ? '200, forwarded' : '403 GW_ERR_CROSS_SITE, never forwarded'}`, async () => {
        const r = await attempt(method, '/app', page(headers), 'cookie');
        if (expected === 'pass') {
          expect(r.status).toBe(200);
          expect(r.reached).toBe(1);
        } else {
          expect(r.status).toBe(403);
          expect(r.code).toBe('GW_ERR_CROSS_SITE');
          expect(r.reached).toBe(0);
        }
      });
    }
  }

  it('GET, HEAD and OPTIONS from another site pass (they change nothing; a link from another site must work)', async () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS']) {
      const r = await attempt(method, '/app', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, 'cookie');
      expect(r.status, method).toBe(200);
      expect(r.reached, method).toBe(1);
    }
  });

  it('the refusal is audited with its code and the subject', async () => {
    const r = await attempt('POST', '/app/audited', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, 'cookie');
    expect(r.status).toBe(403);
    const rec = g.gw.logs.find((l) => l.msg === 'decision' && typeof l.path === 'string' && l.path.startsWith('/app/audited/'));
    expect(rec?.code).toBe('GW_ERR_CROSS_SITE');
    expect(rec?.status).toBe(403);
    expect(rec?.subject).toBe('bob');
  });

  it('duplicate Sec-Fetch-Site or Origin headers are not taken for same-origin', async () => {
    const path = `/app/${randomUUID()}`;
    const raw = await send(`${own}${path}`, {
      method: 'POST',
      cookie,
      dispatcher: g.agent,
      headers: { 'sec-fetch-site': 'same-origin, cross-site' } as Record<string, string>,
      body: 'x=1',
    });
    expect(raw.status).toBe(403);
    expect(upstream.received.some((x) => x.url === path)).toBe(false);
  });
});

describe('bearer tokens carry their credential on purpose: not affected', () => {
  for (const method of UNSAFE) {
    it(`${method} with a bearer token passes from every origin`, async () => {
      for (const [name, headers] of CASES) {
        const r = await attempt(method, '/app', page(headers), 'bearer');
        expect(r.status, name).toBe(200);
        expect(r.reached, name).toBe(1);
      }
    });
  }
});

describe("the route's exceptions", () => {
  it('cross_origin.allow: the listed origin passes (compared normalized), others are still refused', async () => {
    const ok = await attempt('POST', '/partner', { 'sec-fetch-site': 'cross-site', origin: 'https://app.example.com' }, 'cookie');
    expect(ok.status).toBe(200);
    expect(ok.reached).toBe(1);
    const okOld = await attempt('POST', '/partner', { origin: 'https://app.example.com' }, 'cookie');
    expect(okOld.status).toBe(200);
    const bad = await attempt('POST', '/partner', { 'sec-fetch-site': 'cross-site', origin: 'https://app.example.com.evil.example' }, 'cookie');
    expect(bad.status).toBe(403);
    expect(bad.reached).toBe(0);
    const otherPort = await attempt('POST', '/partner', { origin: 'https://app.example.com:8443' }, 'cookie');
    expect(otherPort.status).toBe(403);
  });

  it('cors.origins with credentials: true counts as allowed; without credentials it does not', async () => {
    const ok = await attempt('POST', '/spa', { 'sec-fetch-site': 'cross-site', origin: 'https://spa.example.com' }, 'cookie');
    expect(ok.status).toBe(200);
    expect(ok.reached).toBe(1);
    const nocred = await attempt('POST', '/spa-nocred', { 'sec-fetch-site': 'cross-site', origin: 'https://spa.example.com' }, 'cookie');
    expect(nocred.status).toBe(403);
    expect(nocred.code).toBe('GW_ERR_CROSS_SITE');
    expect(nocred.reached).toBe(0);
  });

  it('cross_origin: { protect: false } opts the route out', async () => {
    const r = await attempt('DELETE', '/open', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, 'cookie');
    expect(r.status).toBe(200);
    expect(r.reached).toBe(1);
  });
});

function openSocket(path: string, headers: Record<string, string>): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${own.replace('https:', 'wss:')}${path}`, { ca, headers, handshakeTimeout: 5000 });
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body || '{}') as { code?: string }).code }));
    });
    ws.once('error', reject);
  });
}

describe('WebSocket upgrades are unsafe: the same rule', () => {
  for (const [name, headers, expected] of CASES) {
    it(`cookie, ${name} → ${expected === 'pass' ? '101' : '403 GW_ERR_CROSS_SITE, no upgrade upstream'}`, async () => {
      const path = `/app/ws/${randomUUID()}`;
      // ws sets Origin itself only when asked; the headers here are exactly a page's.
      const r = await openSocket(path, { ...page(headers), cookie });
      if (expected === 'pass') {
        expect(r.status).toBe(101);
        expect(upgrades.filter((u) => u === path)).toHaveLength(1);
      } else {
        expect(r.status).toBe(403);
        expect(r.code).toBe('GW_ERR_CROSS_SITE');
        expect(upgrades.filter((u) => u === path)).toHaveLength(0);
      }
    });
  }

  it('a bearer token opens the socket from any origin', async () => {
    const path = `/app/ws/${randomUUID()}`;
    const r = await openSocket(path, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', authorization: `Bearer ${bearer}` });
    expect(r.status).toBe(101);
    expect(upgrades).toContain(path);
  });
});

describe('forward-auth judges the checked request with the same rule', () => {
  const verify = (method: string, headers: Record<string, string>, host = new URL(own).host, proto = 'https') =>
    g.send('/.zt/verify', {
      cookie,
      headers: { 'x-forwarded-method': method, 'x-forwarded-proto': proto, 'x-forwarded-host': host, 'x-forwarded-uri': '/app/form', ...headers },
    });

  it('a cross-site POST is refused; the same POST from the forwarded origin passes; a GET passes', async () => {
    const evil = await verify('POST', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(evil.status).toBe(403);
    expect(evil.json.code).toBe('GW_ERR_CROSS_SITE');
    expect((await verify('POST', { origin: 'https://evil.example' })).status).toBe(403);
    expect((await verify('POST', { origin: 'null' })).status).toBe(403);
    expect((await verify('POST', { 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await verify('GET', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(200);
    expect((await verify('POST', {})).status).toBe(200);
  });

  it("the own origin is the forwarded proto and host (TLS terminated by the proxy in front)", async () => {
    expect((await verify('PUT', { origin: 'https://crm.example.com' }, 'crm.example.com')).status).toBe(200);
    expect((await verify('PUT', { origin: 'https://crm.example.com' }, 'crm.example.com', 'http')).status).toBe(403);
    expect((await verify('PUT', { origin: 'http://crm.example.com' }, 'crm.example.com', 'http')).status).toBe(200);
  });
});

describe('/.zt/grants: the cookie rule for JSON and forms alike', () => {
  const request = (headers: Record<string, string>, auth: 'cookie' | 'bearer' = 'cookie') =>
    g.send('/.zt/grants', {
      method: 'POST',
      ...(auth === 'cookie' ? { cookie } : {}),
      headers: { 'content-type': 'application/json', ...(auth === 'bearer' ? { authorization: `Bearer ${bearer}` } : {}), ...headers },
      body: JSON.stringify({ grant: 'ops', duration: '30m', justification: 'INC-42' }),
    });

  it('a session request from another origin is refused (and files nothing); from the own origin it is filed', async () => {
    for (const headers of [{ 'sec-fetch-site': 'same-site', origin: 'https://intranet.localhost' }, { origin: 'https://evil.example' }, { origin: 'null' }]) {
      const r = await request(headers);
      expect(r.status).toBe(403);
      expect(r.json.code).toBe('GW_ERR_CROSS_SITE');
    }
    expect([...g.gw.gateway.runtime.access.list('grants').values()]).toHaveLength(0);
    const ok = await request({ 'sec-fetch-site': 'same-origin', origin: own });
    expect(ok.status).toBe(201);
    expect([...g.gw.gateway.runtime.access.list('grants').values()]).toHaveLength(1);
  });

  it('a form (the gateway\'s own pages send one) from another origin is refused and files nothing; from the own origin it is filed (303)', async () => {
    const form = (headers: Record<string, string>, what: string) =>
      g.send('/.zt/grants', { method: 'POST', cookie, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...headers }, body: `grant=ops&duration=30m&justification=${what}` });
    const count = () => [...g.gw.gateway.runtime.access.list('grants').values()].length;
    const before = count();
    for (const headers of [{ 'sec-fetch-site': 'same-site', origin: 'https://intranet.localhost' }, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, { origin: 'https://evil.example' }, { origin: 'null' }]) {
      const r = await form(headers, 'forged');
      expect({ headers, status: r.status }).toEqual({ headers, status: 403 });
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8'); // a page for the person, not a 303
      expect(r.text).toContain('cannot use the session cookie');
    }
    expect(count()).toBe(before);
    const ok = await form({ 'sec-fetch-site': 'same-origin', origin: own }, 'mine');
    expect({ status: ok.status, location: ok.location }).toEqual({ status: 303, location: '/.zt/grants' });
    expect(count()).toBe(before + 1);
  });

  it('a bearer token is not judged by origin', async () => {
    const r = await request({ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, 'bearer');
    expect(r.status).toBe(201);
  });
});

describe('/.zt/logout changes state only on a same-origin POST', () => {
  async function freshSession(): Promise<string> {
    const jar = new CookieJar();
    const idp = new CookieJar();
    const start = await g.send('/app/again', { jar, headers: HTML });
    const { callback } = await loginAtProvider(op, start.location as string, idp, { account: 'bob' });
    await g.send(callback.slice(g.origin.length), { jar, headers: HTML });
    return jar.header(`${own}/`) as string;
  }
  const alive = async (c: string) => (await g.send('/.zt/session', { cookie: c })).json.authenticated as boolean;

  it('GET shows a page with a POST form and its own CSP; the session stays', async () => {
    const c = await freshSession();
    const r = await g.send('/.zt/logout', { cookie: c, headers: HTML });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toContain('text/html');
    expect(r.text).toMatch(/<form method="post" action="\/\.zt\/logout">/);
    expect(r.setCookie).toEqual([]);
    const csp = r.headers['content-security-policy'] as string;
    expect(csp).toContain(`form-action 'self' ${op.issuer}`);
    expect(csp).toContain("default-src 'none'");
    expect(await alive(c)).toBe(true);
  });

  it('a cross-site POST is refused and the session stays; a same-origin POST logs out and goes to the IdP', async () => {
    const c = await freshSession();
    for (const headers of [{ 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, { origin: 'https://evil.example' }, { 'sec-fetch-site': 'same-site' }]) {
      const r = await g.send('/.zt/logout', { method: 'POST', cookie: c, headers });
      expect(r.status).toBe(403);
      expect(r.json.code).toBe('GW_ERR_CROSS_SITE');
      expect(await alive(c)).toBe(true);
    }
    const ok = await g.send('/.zt/logout', { method: 'POST', cookie: c, headers: { 'sec-fetch-site': 'same-origin', origin: own } });
    expect(ok.status).toBe(302);
    expect(ok.location?.startsWith(`${op.issuer}/session/end`)).toBe(true);
    expect(ok.setCookie.some((l) => l.startsWith('__Host-zt=;') && l.includes('Max-Age=0'))).toBe(true);
    expect(await alive(c)).toBe(false);
  });
});
