// Review (attack): mapping Location back (response-headers.ts mapLocation → upstream.ts unrewritePath) turns
// an app's same-origin redirect into an open redirect when the route's prefix is `/`.
//
// A route `match.path: /` with `rewrite_prefix: /ctx` (an app under a context path, published at the root:
// the common Tomcat/servlet setup) compiles to from '' → to '/ctx'. The inverse drops `/ctx` from a Location:
// `/ctx//evil.example/x` becomes `//evil.example/x`, and `/ctx/\evil.example` becomes `/\evil.example`, both
// of which browsers follow to https://evil.example. For the app these Locations were harmless same-origin
// paths (an app that builds `contextPath + next` after checking that `next` starts with `/`, or a
// trailing-slash redirect), so the gateway itself creates the open redirect:
//   https://gw/login?next=//evil.example/x → 302 Location: //evil.example/x
// Safe behaviour: a mapped-back Location is never protocol-relative (`//`, `/\`): it stays as the app sent
// it (not mapped) or is refused; same-origin paths keep pointing at the gateway's origin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let app: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  // The app lives under /ctx and, after a login, redirects to its own context path + `next` (a path).
  app = await startUpstream((_req, res, rec) => {
    const u = new URL(rec.url, 'http://app');
    if (u.pathname !== '/ctx/login') return false;
    const next = u.searchParams.get('next') ?? '/';
    res.writeHead(302, { location: `/ctx${next.startsWith('/') ? next : '/'}` });
    res.end();
    return true;
  });
  gw = await startGateway(`listen: { address: 127.0.0.1:0, plaintext: true }
log: { level: warn, access: false }
routes:
  - name: root
    match: { path: / }
    upstream: { url: ${app.url}, rewrite_prefix: /ctx }
    public: true
`);
});

afterAll(async () => {
  await gw?.close();
  await app?.close();
});

async function location(path: string): Promise<string | undefined> {
  const res = await request(`${gw.url}${path}`);
  await res.body.text();
  expect(res.statusCode).toBe(302);
  return res.headers.location as string | undefined;
}

/** Where a browser would go: resolved against the gateway's origin. */
const resolvedOrigin = (loc: string): string => new URL(loc.replace(/\\/g, '/'), 'https://gw.example').origin;

describe('review: Location mapped back under a root route with rewrite_prefix', () => {
  it('control: /ctx/home maps back to /home', async () => {
    expect(await location('/login?next=/home')).toBe('/home');
  });

  it('/ctx//evil.example/x must not become //evil.example/x', async () => {
    const loc = (await location('/login?next=//evil.example/x')) as string;
    expect(resolvedOrigin(loc)).toBe('https://gw.example');
  });

  it('/ctx/\\evil.example must not become /\\evil.example', async () => {
    const loc = (await location(`/login?next=${encodeURIComponent('/\\evil.example')}`)) as string;
    expect(resolvedOrigin(loc)).toBe('https://gw.example');
  });
});
