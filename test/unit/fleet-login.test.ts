// login.host compiled (authn/oidc/fleet.ts): which hosts are the gateway's own, the auth host's origin, and
// where a login may return. A route without match.host names no host here; wildcards name their subdomains.
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.ts';
import type { RequestContext } from '../../src/core/index.ts';
import { compileFleetLogin } from '../../src/authn/oidc/fleet.ts';
import { compilePublicOrigins } from '../../src/normalize/index.ts';

const config = (login: Config['login'], hosts: Array<string | string[] | undefined>): Config =>
  ({ login, routes: hosts.map((host) => ({ match: { ...(host === undefined ? {} : { host }), path: '/' } })) }) as unknown as Config;

const ctx = (authority: string, proto = 'https'): RequestContext =>
  ({ host: { name: authority.split(':')[0], authority }, forwardedHost: authority, forwardedProto: proto }) as unknown as RequestContext;

describe('compileFleetLogin', () => {
  it('is null without login', () => {
    expect(compileFleetLogin(config(undefined, ['a.example']), compilePublicOrigins([]))).toBeNull();
  });

  it.each([
    ['not named by any route', 'auth.example', ['a.example']],
    ['only a host-less route (any host) exists', 'auth.example', [undefined]],
    ['a wildcard names subdomains, not the apex', 'example.com', ['*.example.com']],
  ])('refuses an auth host %s', (_why, host, hosts) => {
    expect(() => compileFleetLogin(config({ host, logout: 'fleet' }, hosts), compilePublicOrigins([]))).toThrow(/is not one of the gateway's own hosts/);
  });

  it('accepts a route host, a wildcard subdomain or a public_urls host; the origin follows public_urls, the written port, or the request', () => {
    const here = ctx('a.example:8443');
    const plain = compileFleetLogin(config({ host: 'auth.example', logout: 'fleet' }, ['a.example', 'auth.example']), compilePublicOrigins([]));
    expect(plain?.authOrigin(here)).toBe('https://auth.example:8443');
    expect(plain?.isAuthHost(ctx('auth.example:8443'))).toBe(true);
    expect(plain?.isAuthHost(here)).toBe(false);
    const wild = compileFleetLogin(config({ host: 'auth.example.com:9443', logout: 'host' }, ['*.example.com']), compilePublicOrigins([]));
    expect(wild?.authOrigin(here)).toBe('https://auth.example.com:9443');
    expect(wild?.logout).toBe('host');
    const urls = ['https://auth.example.com', 'https://a.example.com:8444'];
    const listed = compileFleetLogin(config({ host: 'auth.example.com', logout: 'fleet' }, ['a.example.com']), compilePublicOrigins(urls), urls);
    expect(listed?.authOrigin(ctx('a.example.com:8444'))).toBe('https://auth.example.com');
  });

  it('return_to: a path here, or an absolute URL on our hosts (same scheme, that host’s port); anything else is /', () => {
    const f = compileFleetLogin(config({ host: 'auth.example', logout: 'fleet' }, ['a.example', 'b.example', 'auth.example', '*.apps.example']), compilePublicOrigins([]));
    const here = ctx('a.example:8443');
    const to = (v: string | null) => f?.returnTo(here, v);
    expect(to('/x?y=1')).toEqual({ origin: 'https://a.example:8443', path: '/x?y=1' });
    expect(to('https://b.example:8443/deep/page?q=1')).toEqual({ origin: 'https://b.example:8443', path: '/deep/page?q=1' });
    expect(to('https://B.Example:8443')).toEqual({ origin: 'https://b.example:8443', path: '/' });
    expect(to('https://crm.apps.example:8443/x')).toEqual({ origin: 'https://crm.apps.example:8443', path: '/x' });
    const home = { origin: 'https://a.example:8443', path: '/' };
    for (const bad of [
      null,
      '',
      'https://evil.example/',
      'https://b.example/x', // the default port, not this listener's
      'https://b.example:9999/x',
      'http://b.example:8443/x',
      '//evil.example/x',
      '/\\evil.example',
      'https:evil.example',
      'https://b.example:8443@evil.example/',
      'https://evil.example#b.example:8443',
      'https://b.example:8443\\@evil.example/',
      'https://b.example:8443/%0a/x',
      'https://b.example:8443//evil.example/',
      'https://b.example:8443/\tx',
      `/${'x'.repeat(2100)}`,
    ]) {
      expect(to(bad), String(bad)).toEqual(bad === 'https://b.example:8443/%0a/x' || bad === 'https://b.example:8443//evil.example/' ? { origin: 'https://b.example:8443', path: '/' } : home);
    }
  });

  it('ownOrigin: only an origin (no path) on our hosts, with this scheme', () => {
    const f = compileFleetLogin(config({ host: 'auth.example', logout: 'fleet' }, ['a.example', 'auth.example']), compilePublicOrigins([]));
    const here = ctx('auth.example:8443');
    expect(f?.ownOrigin(here, 'https://a.example:8443')).toBe('https://a.example:8443');
    for (const bad of ['https://a.example:8443/', 'https://a.example', 'http://a.example:8443', 'https://evil.example:8443', 'https://a.example:8443?x', 'a.example:8443']) {
      expect(f?.ownOrigin(here, bad), bad).toBeUndefined();
    }
  });
});
