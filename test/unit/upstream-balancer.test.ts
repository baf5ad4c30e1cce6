// The pure parts of several upstream endpoints: the prefix rewrite and its inverse, and the balancer's choice
// (round robin, least request with ties in turn, random among the available, another endpoint for a retry,
// none available → GW_ERR_NO_HEALTHY_UPSTREAM), and Envoy's retry budget arithmetic.
import { describe, expect, it } from 'vitest';
import type { Pool } from 'undici';
import { GatewayError } from '../../src/core/index.ts';
import { compileUpstream, rewritePath, unrewritePath, type UpstreamTarget } from '../../src/proxy/upstream.ts';
import { UpstreamGroup } from '../../src/proxy/balancer.ts';
import type { UpstreamConfig } from '../../src/config/index.ts';

const base = { timeout: 1000, connect_timeout: 1000, body_timeout: 1000, connections: 1, preserve_host: false, case_insensitive: false, allow_encoded_semicolon: false, balance: 'round_robin' } as const;
const upstream = (extra: Partial<UpstreamConfig>, matchPath = '/'): UpstreamTarget => compileUpstream({ ...base, ...extra } as UpstreamConfig, '/', matchPath);
const cell = () => ({ n: 0 });
const cells = { retries: cell(), endpoint: () => ({ healthy: cell(), inflight: cell(), ejections: cell() }) };
const group = (u: UpstreamTarget) => new UpstreamGroup(u, () => ({}) as Pool, cells);
const eps = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'];

describe('prefix rewrite', () => {
  it('strips and rewrites on segment boundaries only; empty becomes /', () => {
    const strip = upstream({ url: eps[0], strip_prefix: '/app' }, '/app').rewrite!;
    // A path not under the prefix as written (another spelling of one the route matched) is refused: undefined.
    expect(['/app', '/app/', '/app/x', '/appx', '/other'].map((p) => rewritePath(strip, p))).toEqual(['/', '/', '/x', undefined, undefined]);
    // `;params` on the prefix segment (read as /app/secret by routing and by Tomcat/Jetty/Spring) are stripped with it.
    expect(['/app;x/secret', '/app;jsessionid=1'].map((p) => rewritePath(strip, p))).toEqual(['/secret', '/']);
    const re = upstream({ url: eps[0], rewrite_prefix: '/new' }, '/old').rewrite!;
    expect(['/old', '/old/a/b', '/old;x/a'].map((p) => rewritePath(re, p))).toEqual(['/new', '/new/a/b', '/new;x/a']);
    expect(unrewritePath(re, '/new;jsessionid=abc')).toBe('/old;jsessionid=abc');
    // Mapping back never makes a protocol-relative URL (a browser would leave the origin).
    const atRoot = upstream({ url: eps[0], rewrite_prefix: '/ctx' }, '/').rewrite!;
    expect(['/ctx//evil.example/x', '/ctx/\\evil.example', '/ctx/ok'].map((p) => unrewritePath(atRoot, p))).toEqual([undefined, undefined, '/ok']);
    expect(['/new/a', '/new', '/newer', '/x'].map((p) => unrewritePath(re, p))).toEqual(['/old/a', '/old', undefined, undefined]);
    const root = upstream({ url: eps[0], strip_prefix: '/app', rewrite_prefix: '/' }, '/app/v1').rewrite!;
    expect(rewritePath(root, '/app/v1/x')).toBe('/v1/x');
    expect(unrewritePath(root, '/v1/x')).toBe('/app/v1/x');
  });

  it('template and exact match paths: the literal part bounds strip_prefix', () => {
    expect(upstream({ url: eps[0], strip_prefix: '/api' }, '/api/{id}/items').rewrite).toEqual({ from: '/api', to: '' });
    expect(upstream({ url: eps[0], strip_prefix: '/api' }, '=/api/x').rewrite).toEqual({ from: '/api', to: '' });
    expect(() => upstream({ url: eps[0], strip_prefix: '/api/x' }, '/api/{id}')).toThrow(/segment prefix/);
  });

  it('audience: the first endpoint origin for all, or upstream.audience', () => {
    expect(upstream({ endpoints: eps }).audience).toBe('http://127.0.0.1:1');
    expect(upstream({ endpoints: eps, audience: 'https://app' }).audience).toBe('https://app');
    expect(upstream({ endpoints: eps }).endpoints.map((e) => e.hostHeader)).toEqual(['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3']);
    expect(() => upstream({ endpoints: [eps[0] as string, eps[0] as string] })).toThrow(/twice/);
  });
});

describe('balancer', () => {
  it('round robin in order, skipping an unavailable endpoint', () => {
    const g = group(upstream({ endpoints: eps }));
    expect([0, 1, 2, 3].map(() => g.pick().target.index)).toEqual([0, 1, 2, 0]);
    (g.endpoints[1] as { healthy: boolean }).healthy = false;
    expect([0, 1, 2, 3].map(() => g.pick().target.index)).toEqual([2, 0, 2, 0]);
  });

  it('least_request: fewest in flight, ties in turn', () => {
    const g = group(upstream({ endpoints: eps, balance: 'least_request' }));
    const [a, b] = g.endpoints;
    a!.begin();
    a!.begin();
    b!.begin();
    expect(g.pick().target.index).toBe(2);
    g.endpoints[2]!.begin();
    g.endpoints[2]!.begin();
    expect(g.pick().target.index).toBe(1);
    b!.end();
    // b (0 in flight) is the least loaded
    expect(g.pick().target.index).toBe(1);
  });

  it('random picks only available endpoints; a retry avoids the failed one when it can', () => {
    const g = group(upstream({ endpoints: eps, balance: 'random' }));
    g.endpoints[0]!.ejectedUntil = Date.now() + 60_000;
    for (let i = 0; i < 50; i++) expect(g.pick().target.index).not.toBe(0);
    const rr = group(upstream({ endpoints: eps.slice(0, 2) }));
    const first = rr.pick();
    for (let i = 0; i < 5; i++) expect(rr.pick(first)).not.toBe(first);
    rr.endpoints[1]!.healthy = false;
    expect(rr.pick(first)).toBe(first); // the only one left
  });

  it('none available: GW_ERR_NO_HEALTHY_UPSTREAM with Retry-After from the earliest ejection end', () => {
    const g = group(upstream({ endpoints: eps.slice(0, 2), outlier: { consecutive_errors: 2, ejection: 10_000 } }));
    const [a, b] = g.endpoints;
    a!.failed(g.upstream.outlier);
    expect(g.pick(a)).toBe(b); // one error is not enough
    a!.failed(g.upstream.outlier);
    b!.failed(g.upstream.outlier);
    b!.failed(g.upstream.outlier);
    let err: unknown;
    try {
      g.pick();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_ERR_NO_HEALTHY_UPSTREAM');
    expect((err as GatewayError).status).toBe(503);
    expect((err as GatewayError).headers).toEqual([['retry-after', '10']]);
    expect(a!.cells.ejections.n + b!.cells.ejections.n).toBe(2);
    g.stop();
  });

  it("the retry budget: max(min_concurrency, percent% of active requests)", () => {
    const g = group(upstream({ endpoints: eps, retries: { attempts: 2, on: ['connect_failure'], budget: { percent: 20, min_concurrency: 3 } } }));
    g.active = 10;
    g.activeRetries = 2;
    expect(g.mayRetry()).toBe(true);
    g.activeRetries = 3;
    expect(g.mayRetry()).toBe(false);
    g.active = 100; // 20% of 100 = 20
    expect(g.mayRetry()).toBe(true);
    g.activeRetries = 20;
    expect(g.mayRetry()).toBe(false);
    expect(group(upstream({ endpoints: eps })).mayRetry()).toBe(false);
  });
});
