// Pages for people: a refused browser navigation gets a small HTML page (status in words, what to do, request
// id and time, sign in / request access) with its own CSP (style by hash, no script); the same request as
// fetch() keeps problem+json byte for byte. Operator templates (error_pages.dir): load errors and reload.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { accessConfig, token } from '../helpers/access.ts';
import { startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { sendErrorPage } from '../../src/pipeline/error-page.ts';

const NAV = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none', 'sec-fetch-dest': 'document' };
const FETCH = { accept: '*/*', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'empty' };

let upstream: Upstream;
let slow: Upstream;
let gw: TestGateway;
let closedPort: number;

const extraRoutes = (up: string, slowUrl: string, closed: number) => `
  - name: down
    match: { path: /down }
    upstream: { url: "http://127.0.0.1:${closed}", timeout: 2s, connect_timeout: 1s }
    public: true
  - name: slow
    match: { path: /slow }
    upstream: { url: ${slowUrl}, timeout: 300ms, connect_timeout: 1s }
    public: true
  - name: limited
    match: { path: /limited }
    upstream: { url: ${up}, timeout: 2s }
    public: true
    rate_limit: { per: ip, limit: 1, window: 1m }
  - name: checked
    match: { path: /checked }
    upstream: { url: ${up}, timeout: 2s }
    public: true
    validate: { content_types: [application/json], max_body: 1kb }
  - name: keyless
    match: { path: /keyless }
    upstream: { url: ${up}, timeout: 2s }
    authenticate: [remote]
    authorize: { allow: [{ authenticated: true }] }
`;

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  upstream = await startUpstream();
  slow = await startUpstream(() => true); // never answers
  closedPort = await freePort();
  const cfg = accessConfig({ upstream: upstream.url })
    .replace(/identity_providers:\n/, `identity_providers:\n  remote: { type: jwt, issuer: "https://remote.test", audiences: [gw], algorithms: [RS256], jwks_uri: "http://127.0.0.1:${closedPort}/jwks" }\n`)
    .replace(/routes:\n/, `routes:${extraRoutes(upstream.url, slow.url, closedPort)}`);
  gw = await startGateway(cfg);
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await slow?.close();
});

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

async function get(path: string, headers: Record<string, string>, opts: { method?: 'GET' | 'POST'; body?: string } = {}): Promise<Got> {
  const res = await request(`${gw.url}${path}`, { method: opts.method ?? 'GET', headers, ...(opts.body !== undefined ? { body: opts.body } : {}) });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

const STYLE_RE = /<style>([\s\S]*?)<\/style>/;

/** Every page: HTML, its request id is X-Request-Id, its CSP allows exactly its style by hash and no script. */
function expectPage(r: Got, status: number, title: string): void {
  expect(r.status).toBe(status);
  expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
  const id = r.headers['x-request-id'] as string;
  expect(id).toMatch(/^[A-Za-z0-9-]{8,}$/);
  expect(r.text).toContain(`<dd>${id}</dd>`);
  expect(r.text).toContain(`<h1>${title}</h1>`);
  expect(r.text).toContain(`HTTP ${status}`);
  expect(r.text).toMatch(/<dt>Time<\/dt><dd>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z<\/dd>/);
  const css = STYLE_RE.exec(r.text)?.[1] as string;
  const hash = createHash('sha256').update(css).digest('base64');
  const csp = r.headers['content-security-policy'] as string;
  expect(csp).toBe(`default-src 'none'; style-src 'sha256-${hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
  expect(csp).not.toMatch(/script-src|unsafe/);
  expect(r.headers['content-security-policy-report-only']).toBeUndefined();
  expect(r.text).not.toMatch(/<script|<link|<img|src=|javascript:/i);
  expect(r.headers['cache-control']).toBe('no-store');
  expect(r.headers['x-content-type-options']).toBe('nosniff');
  expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.text));
}

function expectProblem(r: Got, status: number, code: string): void {
  expect(r.status).toBe(status);
  expect(r.headers['content-type']).toBe('application/problem+json');
  const body = JSON.parse(r.text) as Record<string, unknown>;
  expect(body.code).toBe(code);
  expect(body.request_id).toBe(r.headers['x-request-id']);
  // The problem body, byte for byte as before: same keys in the same order.
  expect(Object.keys(body).slice(0, 6)).toEqual(['type', 'title', 'status', 'code', 'detail', 'request_id']);
}

describe('pages for people: one per status, same status and headers; fetch keeps problem+json', () => {
  const cases: Array<{ status: number; code: string; title: string; path: string; headers?: () => Promise<Record<string, string>>; body?: string; extra?: Record<string, string> }> = [
    { status: 400, code: 'GW_ERR_BAD_PATH', title: 'Bad request', path: '/app/a%2Fb' },
    { status: 401, code: 'GW_ERR_UNAUTHENTICATED', title: 'Sign-in required', path: '/app/x' },
    { status: 403, code: 'GW_ERR_FORBIDDEN', title: 'Access denied', path: '/db/console', headers: async () => ({ authorization: `Bearer ${await token('alice')}` }) },
    { status: 404, code: 'GW_ERR_NO_ROUTE', title: 'Page not found', path: '/nothing-here' },
    { status: 413, code: 'GW_ERR_BODY_TOO_LARGE', title: 'Request too large', path: '/checked', extra: { 'content-type': 'application/json' }, body: `{"a":"${'x'.repeat(2000)}"}` },
    { status: 415, code: 'GW_ERR_UNSUPPORTED_MEDIA_TYPE', title: 'Unsupported content', path: '/checked', extra: { 'content-type': 'text/plain' }, body: 'hello' },
    { status: 502, code: 'GW_ERR_UPSTREAM_UNAVAILABLE', title: 'Application unavailable', path: '/down' },
    { status: 503, code: 'GW_ERR_DEPENDENCY_UNAVAILABLE', title: 'Temporarily unavailable', path: '/keyless', headers: async () => ({ authorization: `Bearer ${rs256Token()}` }) },
    { status: 504, code: 'GW_ERR_UPSTREAM_TIMEOUT', title: 'Application timed out', path: '/slow' },
  ];
  for (const c of cases) {
    it(`${c.status} ${c.code}`, async () => {
      const auth = c.headers ? await c.headers() : {};
      const nav = await get(c.path, { ...NAV, ...auth, ...c.extra }, c.body !== undefined ? { body: c.body } : {});
      expectPage(nav, c.status, c.title);
      const fetched = await get(c.path, { ...FETCH, ...auth, ...c.extra }, c.body !== undefined ? { body: c.body } : {});
      expectProblem(fetched, c.status, c.code);
      // The audit record carries the code either way.
      const audits = gw.logs.filter((l) => l.audit === true && l.request_id === nav.headers['x-request-id']);
      expect(audits.map((l) => l.code)).toEqual([c.code]);
    });
  }

  it('401 keeps WWW-Authenticate; 403 offers Request access for the grant that would let this user in', async () => {
    const nav = await get('/app/x', NAV);
    expect(nav.headers['www-authenticate']).toBe('Bearer realm="zt-gateway"');
    expect(nav.text).not.toContain('Request access');
    const t = await token('alice');
    const denied = await get('/db/console', { ...NAV, authorization: `Bearer ${t}` });
    expect(denied.text).toContain('<form class="ra" method="post" action="/.zt/grants">');
    expect(denied.text).toContain('<option value="prod-db-admin">prod-db-admin</option>');
    expect(denied.text).toContain('name="justification"');
    expect(denied.text).toContain('name="duration"');
    // max_duration 1h: no longer duration is offered.
    expect([...denied.text.matchAll(/<option>(\w+)<\/option>/g)].map((m) => m[1])).toEqual(['15m', '1h']);
  });

  it('429 keeps Retry-After', async () => {
    await get('/limited', FETCH);
    const nav = await get('/limited', NAV);
    expectPage(nav, 429, 'Too many requests');
    expect(Number(nav.headers['retry-after'])).toBeGreaterThan(0);
    const fetched = await get('/limited', FETCH);
    expectProblem(fetched, 429, 'GW_ERR_RATE_LIMITED');
    expect(fetched.headers['retry-after']).toBe(nav.headers['retry-after']);
  });

  it('HEAD navigation: the page headers and no body', async () => {
    const res = await request(`${gw.url}/nothing-here`, { method: 'HEAD', headers: NAV });
    await res.body.text();
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  });

  it('hostile values are escaped: a path with <script> and a form naming a grant <script>', async () => {
    const raw = await rawRequest(gw.port, `GET /nothing/<script>alert(1)</script>"'& HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nSec-Fetch-Mode: navigate\r\nConnection: close\r\n\r\n`);
    // The parser and normalize accept these bytes (an app may route them): no route here, so a 404 page.
    expect(raw.status).toBe(404);
    expect(raw.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(raw.body).toContain('<dd>/nothing/&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;</dd>');
    expect(raw.body).not.toContain('<script>');
    const t = await token('mallory');
    const form = await get('/.zt/grants', { ...NAV, 'sec-fetch-site': 'same-origin', authorization: `Bearer ${t}`, 'content-type': 'application/x-www-form-urlencoded' }, {
      method: 'POST',
      body: new URLSearchParams({ grant: '<script>alert(1)</script>', justification: 'x', duration: '1h' }).toString(),
    });
    expectPage(form, 400, 'Bad request');
    expect(form.text).toContain('unknown grant &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;');
    expect(form.text).not.toContain('<script>');
  });

  it('an unknown error becomes a 500 page that leaks nothing', async () => {
    const state = gw.gateway.runtime.acquire();
    const server = http.createServer((req, res) => {
      const sent = sendErrorPage(state, undefined, req, res, new Error('db password hunter2 at /etc/secret'), 'req-500-test', state.compiled.security.flat);
      if (!sent) res.end('problem');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const res = await request(url, { headers: NAV });
      const text = await res.body.text();
      expectPage({ status: res.statusCode, headers: res.headers, text }, 500, 'Something went wrong');
      expect(text).not.toMatch(/hunter2|secret/);
      const api = await request(url, { headers: FETCH });
      expect(await api.body.text()).toBe('problem');
    } finally {
      server.close();
    }
  });

  it('parser-level refusals stay problem+json (431)', async () => {
    const raw = await rawRequest(gw.port, `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nSec-Fetch-Mode: navigate\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    expect(raw.status).toBe(431);
    expect(raw.headers['content-type']).toBe('application/problem+json');
  });
});

let rsaToken: string | undefined;
function rs256Token(): string {
  // Any well-formed RS256 token with a kid: the JWKS cannot be fetched, so the check fails closed (503).
  if (rsaToken) return rsaToken;
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  rsaToken = `${b64({ alg: 'RS256', kid: 'k1', typ: 'JWT' })}.${b64({ sub: 'x', iss: 'https://remote.test', aud: 'gw', exp: Math.floor(Date.now() / 1000) + 600 })}.${Buffer.from('sig').toString('base64url')}`;
  return rsaToken;
}

describe('error_pages: { dir } templates', () => {
  const yaml = (dir: string) => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
error_pages: { dir: ${dir} }
routes: []
`;
  const DEFAULT = `<!doctype html><html><head><style>p{color:red}</style></head><body><h1>{{ status }} {{title}}</h1><p>{{detail}}</p><code>{{request_id}}</code><i>{{time}}</i><a href="{{login_url}}">in</a><a href="{{logout_url}}">out</a></body></html>`;

  function dirWith(files: Record<string, string>): string {
    const base = tempDir();
    mkdirSync(join(base, 'pages'));
    for (const [n, t] of Object.entries(files)) writeFileSync(join(base, 'pages', n), t);
    return base;
  }

  it('an unknown placeholder is a load error naming the file, line and placeholder', async () => {
    const dir = dirWith({ 'default.html': DEFAULT, '404.html': 'line1\n<p>{{path}}</p>' });
    await expect(startGateway(yaml('pages/'), { dir })).rejects.toThrow(/404\.html.*unknown placeholder "\{\{path\}\}"/);
    const err = await startGateway(yaml('pages/'), { dir }).catch((e: unknown) => e as Error & { problems: Array<{ file: string; line?: number }> });
    expect(err.problems[0]).toMatchObject({ file: join(dir, 'pages', '404.html'), line: 2 });
  });

  it('a missing default.html, or a missing directory, is a load error', async () => {
    await expect(startGateway(yaml('pages/'), { dir: dirWith({ '404.html': '<p>{{title}}</p>' }) })).rejects.toThrow(/has no default\.html/);
    await expect(startGateway(yaml('nowhere/'), { dir: tempDir() })).rejects.toThrow(/cannot read the error_pages directory/);
  });

  it('<status>.html, else default.html; values escaped; style hash in the CSP; reload picks up a change', async () => {
    const dir = dirWith({ 'default.html': DEFAULT, '404.html': '<style>b{x:1}</style><b>{{status}}</b> {{detail}} {{request_id}}' });
    const g = await startGateway(yaml('pages/'), { dir });
    try {
      const nav = await request(`${g.url}/nope`, { headers: NAV });
      const text = await nav.body.text();
      expect(nav.statusCode).toBe(404);
      expect(text).toBe(`<style>b{x:1}</style><b>404</b> Not found ${nav.headers['x-request-id']}`);
      expect(nav.headers['content-security-policy']).toBe(`default-src 'none'; style-src 'sha256-${createHash('sha256').update('b{x:1}').digest('base64')}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
      // A Host the parser accepts but routing does not: default.html (400 is not 404).
      const bad = await request(`${g.url}/a%2Fb`, { headers: NAV });
      const badText = await bad.body.text();
      expect(bad.statusCode).toBe(400);
      expect(badText).toContain('<h1>400 Bad request</h1>');
      expect(badText).toContain('<a href="">in</a><a href="">out</a>');
      writeFileSync(join(dir, 'pages', '404.html'), '<b>gone {{title}}</b>');
      expect(await g.gateway.reload()).toBe(true);
      const after = await request(`${g.url}/nope`, { headers: NAV });
      expect(await after.body.text()).toBe('<b>gone Page not found</b>');
      expect(after.headers['content-security-policy']).toBe(`default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
      // A broken template on reload: refused, the running pages stay.
      writeFileSync(join(dir, 'pages', '404.html'), '{{oops}}');
      expect(await g.gateway.reload()).toBe(false);
      const still = await request(`${g.url}/nope`, { headers: NAV });
      expect(await still.body.text()).toBe('<b>gone Page not found</b>');
    } finally {
      await g.close();
    }
  });
});
