// A user with 300 groups logs in through a real browser (Debian's Chromium driven by playwright-core) against
// a real OpenID Provider, without Redis: Chromium stores the split session cookies from the gateway's real
// Set-Cookie lines (`__Host-zt`, `__Host-zt.1`), sends them back, and the upstream receives the filtered groups.
//
// TLS stays verified: Chromium trusts exactly the test certificate for localhost (by its SPKI hash).
// Without Chromium at /usr/bin/chromium the test is skipped, except with CI=true, where it fails.
import { type Browser } from 'playwright-core';
import { describeWithChromium, launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCA } from '../../tools/pki.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { ACCOUNTS, startOidcGateway, startOidcProvider, type OidcGateway, type TestOP } from '../helpers/oidc-provider.ts';

const STEP_MS = 10_000;
const TITLE = 'a 300-group user logs in without Redis (Chromium)';

describeWithChromium(TITLE, bigIdentity);

const GROUPS = [...Array.from({ length: 290 }, (_, i) => `team-${String(289 - i).padStart(3, '0')}`), ...Array.from({ length: 10 }, (_, i) => `ops-${i}`)];

function bigIdentity(): void {
  let op: TestOP;
  let upstream: Upstream;
  let gw: OidcGateway;
  let browser: Browser | undefined;

  beforeAll(async () => {
    ACCOUNTS.ivan = { password: 'ivan-pw', email: 'ivan@corp.example', name: 'Ivan', groups: GROUPS, mfa: 'never' };
    const ca = await createCA('browser big identity CA');
    const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    op = await startOidcProvider({ gatewayCa: ca.cert });
    upstream = await startUpstream();
    gw = await startOidcGateway(op, { ca: ca.cert, ...leaf }, {
      clientId: 'gw-browser-big',
      routes: `  - name: app
    match: { path: / }
    upstream: { url: ${upstream.url} }
    authenticate: [corp]
    authorize: { allow: [{ groups: [team-289] }] }
    identity_headers: { groups_filter: { include: [ops-, "/^team-00[0-4]$/"], max: 12 } }
`,
    });
    browser = await launchChromium([leaf.cert]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await upstream?.close();
    await op?.close();
    delete ACCOUNTS.ivan;
  });

  it('logs in, holds the session in two cookies, and the upstream gets the filtered groups', async () => {
    const context = await (browser as Browser).newContext();
    context.setDefaultTimeout(STEP_MS);
    const page = await context.newPage();
    // The protected page sends the browser to the provider, whose (test) login prompt is a JSON page.
    await page.goto(`${gw.origin}/report?q=1`);
    await page.waitForURL((u) => u.origin === op.issuer && u.pathname.startsWith('/interaction/'));
    // Submit the login form from the prompt page, as a person would.
    await page.evaluate(() => {
      const form = document.createElement('form');
      form.method = 'POST';
      form.action = `${location.pathname}/login`;
      for (const [name, value] of [['login', 'ivan'], ['password', 'ivan-pw']]) {
        const input = document.createElement('input');
        input.name = name as string;
        input.value = value as string;
        form.appendChild(input);
      }
      document.body.appendChild(form);
      form.submit();
    });
    await page.waitForURL(`${gw.origin}/report?q=1`);
    const cookies = (await context.cookies(gw.origin)).filter((c) => c.name.startsWith('__Host-zt') && !c.name.includes('-tx-'));
    expect(cookies.map((c) => c.name).sort()).toEqual(['__Host-zt', '__Host-zt.1']);
    for (const c of cookies) expect([c.secure, c.httpOnly, c.path, c.sameSite]).toEqual([true, true, '/', 'Lax']);
    const rec = upstream.received.filter((r) => r.url === '/report?q=1').at(-1);
    expect(rec).toBeDefined();
    const header = (name: string) => {
      const out: string[] = [];
      for (let i = 0; i < (rec?.rawHeaders.length ?? 0); i += 2) if ((rec?.rawHeaders[i] as string).toLowerCase() === name) out.push(rec?.rawHeaders[i + 1] as string);
      return out;
    };
    expect(header('x-zt-user')).toEqual(['ivan']);
    expect(header('x-zt-groups')).toEqual(['ops-0,ops-1,ops-2,ops-3,ops-4,ops-5,ops-6,ops-7,ops-8,ops-9,team-000,team-001']);
    expect(header('x-zt-groups-truncated')).toEqual(['true']);
    expect(header('cookie')).toEqual([]);
    // A second page load rides the same two cookies.
    const again = await page.goto(`${gw.origin}/second`);
    expect(again?.status()).toBe(200);
    expect(upstream.received.some((r) => r.url === '/second')).toBe(true);
    await context.close();
  });
}
