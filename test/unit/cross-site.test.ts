// The pieces of cross-site protection that need no server: origin normalization, listen.public_urls compiled
// into host → origin, the Sec-Fetch-Site / Origin rule, the route's allow list, and the audit-config finding.
import { describe, expect, it } from 'vitest';
import { checkCrossSite, compileCrossSite, isUnsafe } from '../../src/authn/index.ts';
import { postureFindings } from '../../src/cli/posture/checks.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/index.ts';
import { GatewayError, type RequestContext } from '../../src/core/index.ts';
import { compilePublicOrigins, normalizeOrigin } from '../../src/normalize/index.ts';

describe('normalizeOrigin', () => {
  it.each([
    ['https://App.Example.com', 'https://app.example.com'],
    ['https://app.example.com:443', 'https://app.example.com'],
    ['http://app.example.com:80', 'http://app.example.com'],
    ['https://app.example.com:8443', 'https://app.example.com:8443'],
    ['http://app.example.com:443', 'http://app.example.com:443'],
    ['https://[::1]:8443', 'https://[::1]:8443'],
    ['https://app.example.com.', 'https://app.example.com'],
  ])('%s → %s', (value, expected) => expect(normalizeOrigin(value)).toBe(expected));

  it.each(['null', '', 'https://', 'https://a.example/', 'https://user@a.example', 'ftp://a.example', 'https://a.example, https://b.example', 'https://a b.example', 'https://a.example:0', 'https://a.example:99999'])(
    'refuses %j',
    (value) => expect(normalizeOrigin(value)).toBeUndefined(),
  );
});

function ctx(over: Partial<{ method: string; headers: Record<string, string>; host: string; proto: 'http' | 'https'; forwardedHost: string }> = {}): RequestContext {
  const host = over.host ?? 'crm.example.com:8443';
  const name = host.split(':')[0] as string;
  const rawHeaders = Object.entries(over.headers ?? {}).flat();
  return {
    method: over.method ?? 'POST',
    rawHeaders,
    host: { name, authority: host },
    forwardedProto: over.proto ?? 'https',
    forwardedHost: over.forwardedHost ?? host,
  } as unknown as RequestContext;
}

describe('compilePublicOrigins', () => {
  it('maps the host to its URL origin; without a listed host the forwarded scheme and host count', () => {
    const p = compilePublicOrigins(['https://crm.example.com:8444/', 'http://legacy.example.com']);
    expect(p.configured).toBe(true);
    expect(p.originOf(ctx({ host: 'crm.example.com:8444' }))).toBe('https://crm.example.com:8444');
    expect(p.originOf(ctx({ host: 'legacy.example.com', proto: 'https' }))).toBe('http://legacy.example.com');
    expect(p.listed(ctx({ host: 'other.example.com' }))).toBeUndefined();
    expect(p.originOf(ctx({ host: 'other.example.com:443', proto: 'https' }))).toBe('https://other.example.com');
    expect(compilePublicOrigins(undefined).configured).toBe(false);
  });

  it('reports a mismatch between the URL and the Host once per pair', () => {
    const seen: Array<{ public_url: string; host: string }> = [];
    const p = compilePublicOrigins(['https://crm.example.com:8444'], (d) => seen.push(d));
    for (let i = 0; i < 3; i++) p.originOf(ctx({ host: 'crm.example.com:8443' }));
    p.originOf(ctx({ host: 'crm.example.com:8444' }));
    expect(seen).toEqual([{ public_url: 'https://crm.example.com:8444', host: 'crm.example.com:8443' }]);
  });

  it('refuses a URL that is not scheme + host + port, and two URLs for one host', () => {
    for (const urls of [['https://crm.example.com/app'], ['crm.example.com'], ['https://a@crm.example.com'], ['https://crm.example.com', 'http://crm.example.com:8080']]) {
      expect(() => compilePublicOrigins(urls)).toThrow(ConfigError);
    }
  });
});

describe('checkCrossSite', () => {
  const policy = compileCrossSite({ protect: true, allow: ['https://Partner.example.com:443'] }, { origins: ['https://spa.example.com'], credentials: true } as never);
  const own = () => 'https://crm.example.com:8443';
  const verdict = (c: RequestContext) => {
    try {
      checkCrossSite(policy as NonNullable<typeof policy>, c, own);
      return 'pass';
    } catch (err) {
      return (err as GatewayError).code;
    }
  };

  it.each([
    [{ 'sec-fetch-site': 'same-origin' }, 'pass'],
    [{ 'sec-fetch-site': 'none' }, 'pass'],
    [{ 'sec-fetch-site': 'same-site' }, 'GW_ERR_CROSS_SITE'],
    [{ 'sec-fetch-site': 'cross-site' }, 'GW_ERR_CROSS_SITE'],
    [{ 'sec-fetch-site': 'cross-site', origin: 'https://partner.example.com' }, 'pass'],
    [{ 'sec-fetch-site': 'same-site', origin: 'https://spa.example.com' }, 'pass'],
    [{ origin: 'https://crm.example.com:8443' }, 'pass'],
    [{ origin: 'https://CRM.example.com:8443' }, 'pass'],
    [{ origin: 'https://crm.example.com' }, 'GW_ERR_CROSS_SITE'],
    [{ origin: 'null' }, 'GW_ERR_CROSS_SITE'],
    [{ origin: 'https://partner.example.com' }, 'pass'],
    [{}, 'pass'],
  ])('POST with %j → %s', (headers, expected) => expect(verdict(ctx({ headers }))).toBe(expected));

  it('safe methods pass; a GET with Upgrade is judged like a POST', () => {
    expect(verdict(ctx({ method: 'GET', headers: { 'sec-fetch-site': 'cross-site' } }))).toBe('pass');
    expect(verdict(ctx({ method: 'OPTIONS', headers: { origin: 'null' } }))).toBe('pass');
    expect(isUnsafe(ctx({ method: 'GET', headers: { upgrade: 'websocket' } }))).toBe(true);
    expect(verdict(ctx({ method: 'GET', headers: { upgrade: 'websocket', origin: 'https://evil.example' } }))).toBe('GW_ERR_CROSS_SITE');
  });

  it('protect: false compiles to no policy; cors origins without credentials are not allowed', () => {
    expect(compileCrossSite({ protect: false, allow: [] }, undefined)).toBeNull();
    const p = compileCrossSite({ protect: true, allow: [] }, { origins: ['https://spa.example.com'], credentials: false } as never);
    expect(p?.allow.size).toBe(0);
  });
});

describe('audit-config', () => {
  const config = (extra: string) =>
    parseConfigText(
      `listen: { address: 127.0.0.1:0, plaintext: true }
identity_providers:
  corp: { type: oidc, issuer: https://idp.example.com, client_id: gw, client_secret: "\${env:S}" }
session: { secret: "\${env:S}" }
routes:
  - name: legacy
    upstream: { url: http://127.0.0.1:8080 }
    authenticate: [corp]
    authorize: { allow: [{ groups: [x], mfa: true }] }
${extra}
`,
      'gateway.yaml',
      '/tmp',
      { S: 'x'.repeat(40) },
    );

  it('reports a cookie route with cross_origin.protect: false as high', () => {
    const off = postureFindings(config('    cross_origin: { protect: false }')).filter((f) => f.id === 'cross-origin-unprotected');
    expect(off).toEqual([expect.objectContaining({ severity: 'high', route: 'legacy' })]);
    expect(postureFindings(config('')).filter((f) => f.id === 'cross-origin-unprotected')).toEqual([]);
  });
});
