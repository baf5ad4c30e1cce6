// Review (attack): an app behind the gateway can set the gateway's own cookies (session, its chunks, login
// transactions) through its responses.
//
// The gateway strips `__Host-zt`, `__Host-zt.1/.2` and `__Host-zt-tx-*` from every request it forwards (the app
// never sees the session: cookies.ts stripCookies), but response-headers.ts relays the app's Set-Cookie lines
// unchecked. One app on a shared host (compromised, or with a header-injection bug, or a feature that sets
// a cookie named by the user) can therefore:
//  - plant a sealed session of the attacker's account (`__Host-zt=<attacker's cookie>`): every app on the
//    host then acts for the attacker's identity (login CSRF / session swap across routes);
//  - plant `__Host-zt.1` (a foreign chunk): the victim's split session no longer opens (logged out), and since
//    split sessions arrived today, a chunk the gateway did not write now decides whether the login holds.
// Safe behaviour: Set-Cookie lines from upstreams that name the gateway's cookies (the session cookie, its
// chunks, its -tx- transactions) are dropped; the app's own cookies still pass.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

let op: TestOP;
let app: Upstream;
let gw: OidcGateway;

beforeAll(async () => {
  const ca = await createCA('review CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  op = await startOidcProvider({ gatewayCa: ca.cert });
  app = await startUpstream((_req, res, rec) => {
    if (!rec.url.startsWith('/plant')) return false;
    res.writeHead(200, {
      'content-type': 'text/plain',
      'set-cookie': [
        '__Host-zt=2~eyJhdHRhY2tlcg; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=86400',
        '__Host-zt.1=planted-chunk; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=86400',
        '__Host-zt-tx-abc=planted-tx; Path=/; Secure; HttpOnly',
        'app_pref=dark; Path=/',
      ],
    });
    res.end('ok');
    return true;
  });
  gw = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
    clientId: 'gw-review-cookies',
    routes: `  - name: app
    match: { path: / }
    upstream: { url: ${app.url} }
    public: true
`,
  });
});

afterAll(async () => {
  await gw?.close();
  await app?.close();
  await op?.close();
});

describe("review: an upstream's Set-Cookie naming the gateway's cookies", () => {
  it("the app's own cookie passes, the gateway's session, chunk and transaction cookies never do", async () => {
    const r = await gw.send('/plant');
    expect(r.status).toBe(200);
    const names = r.setCookie.map((l) => l.slice(0, l.indexOf('=')));
    expect(names).toContain('app_pref');
    expect(names.filter((n) => n.startsWith('__Host-zt'))).toEqual([]);
  });
});
