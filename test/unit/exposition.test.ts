// The exposition reader: exact label sets, sums with a label filter, escapes, timestamps, bad lines.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/index.ts';
import { parseExposition } from '../../src/metrics/exposition.ts';

describe('parseExposition', () => {
  it('reads what the gateway exports', async () => {
    const m = new Metrics();
    const r = m.route('crm');
    m.request(r, 200, 'crm');
    m.request(r, 200, 'crm');
    m.request(r, 403, 'crm');
    m.authenticated('jwt', true);
    const e = parseExposition((await m.scrape()).body);
    expect(e.value('zt_requests_total', { route: 'crm', status: '200' })).toBe(2);
    expect(e.value('zt_requests_total', { route: 'crm' })).toBeUndefined(); // exact label sets only
    expect(e.sum('zt_requests_total', { route: 'crm' })).toBe(3);
    expect(e.sum('zt_authenticated_requests_total', { mfa: 'true' })).toBe(1);
    expect(e.sum('zt_authenticated_requests_total', { mfa: 'false' })).toBe(0);
    expect(e.value('zt_upstream_duration_seconds_count', { route: 'crm' })).toBe(0);
    expect(e.sum('no_such_metric')).toBe(0);
  });

  it('unescapes label values, ignores timestamps and refuses garbage', () => {
    const e = parseExposition('# HELP x y\nx{a="q\\"u\\\\o\\nte"} 3 1700000000000\ny 1.5e3\n');
    expect(e.value('x', { a: 'q"u\\o\nte' })).toBe(3);
    expect(e.value('y')).toBe(1500);
    expect(() => parseExposition('this is not a metric\n')).toThrow(/not a Prometheus sample line/);
  });
});
