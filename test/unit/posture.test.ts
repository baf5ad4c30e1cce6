// The pieces of `audit-config` that need no process: the Prometheus text parser, the tenet scoring, loopback,
// the ext_authz listener checks.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/index.ts';
import { FINDINGS, TENETS, type Finding } from '../../src/cli/posture/catalog.ts';
import { isLoopbackHost, postureFindings } from '../../src/cli/posture/checks.ts';
import { parsePrometheusText, zeroTrustFigures } from '../../src/cli/posture/metrics.ts';
import { scoreTenets, stageOf } from '../../src/cli/posture/score.ts';

describe('parsePrometheusText', () => {
  it('reads names, labels (with escapes), values and ignores comments and timestamps', () => {
    const text = [
      '# HELP x_total help with "quotes"',
      '# TYPE x_total counter',
      'x_total{a="1",b="say \\"hi\\"\\\\",c="line\\nbreak",} 12 1700000000000',
      'plain 3.5',
      'empty{} 1e3',
      'inf{le="+Inf"} +Inf',
      'nan NaN',
      '',
    ].join('\n');
    const samples = parsePrometheusText(text);
    expect(samples.map((s) => s.name)).toEqual(['x_total', 'plain', 'empty', 'inf', 'nan']);
    expect(samples[0]).toEqual({ name: 'x_total', labels: { a: '1', b: 'say "hi"\\', c: 'line\nbreak' }, value: 12 });
    expect(samples[1]?.value).toBe(3.5);
    expect(samples[2]).toEqual({ name: 'empty', labels: {}, value: 1000 });
    expect(samples[3]?.value).toBe(Infinity);
    expect(Number.isNaN(samples[4]?.value)).toBe(true);
  });

  it.each([
    ['<html>', /no metric name/],
    ['x{a=1} 2', /bad label set/],
    ['x{a="1" 2', /bad label set/],
    ['x{a="1"}', /bad value/],
    ['x twelve', /bad value/],
  ])('refuses %j', (line, error) => {
    expect(() => parsePrometheusText(`ok 1\n${line}\n`)).toThrow(error);
  });

  it('zeroTrustFigures: shares are null when nothing was counted, and non-finite samples are ignored', () => {
    const f = zeroTrustFigures('u', parsePrometheusText('zt_authenticated_requests_total{mfa="true"} 0\nzt_authenticated_requests_total{mfa="false"} 0\nzt_grants_active NaN\n'));
    expect(f).toMatchObject({ mfa_share: null, authenticated_requests: 0, grants_active: null });
    expect(f.missing).toEqual(['zt_service_requests_total', 'zt_service_denied_total', 'zt_grants_active']);
  });
});

describe('tenet scoring', () => {
  const finding = (id: keyof typeof FINDINGS, severity: Finding['severity']): Finding => ({ id, severity, tenets: FINDINGS[id].tenets, path: '', message: 'm', fix: 'f' });

  it('stages follow the documented thresholds', () => {
    expect([100, 90, 89, 70, 69, 40, 39, 0].map(stageOf)).toEqual(['optimal', 'optimal', 'advanced', 'advanced', 'initial', 'initial', 'traditional', 'traditional']);
  });

  it('counts a finding id once per tenet, at its worst severity, and never below 0', () => {
    const { tenets, overall } = scoreTenets([
      finding('route-no-rate-limit', 'low'),
      finding('route-no-rate-limit', 'low'),
      finding('cors-insecure-origin', 'medium'),
      finding('cors-insecure-origin', 'high'),
    ]);
    expect(tenets).toHaveLength(TENETS.length);
    expect(tenets[5]).toMatchObject({ tenet: 6, score: 90, findings: ['route-no-rate-limit'] });
    expect(tenets[1]).toMatchObject({ tenet: 2, score: 60, stage: 'initial', findings: ['cors-insecure-origin'] });
    expect(tenets[3]).toMatchObject({ tenet: 4, score: 60 });
    expect(overall.score).toBe(Math.round((100 + 60 + 100 + 60 + 100 + 90 + 100) / 7));
    const floor = scoreTenets(['route-report-only', 'jwt-audience-unbound', 'trusted-proxies-any'].map((id) => finding(id as keyof typeof FINDINGS, 'high')));
    expect(floor.tenets[5]).toMatchObject({ score: 0, stage: 'traditional' });
  });

  it('every finding id counts against at least one of the seven tenets', () => {
    for (const [id, f] of Object.entries(FINDINGS)) {
      expect(f.tenets.length, id).toBeGreaterThan(0);
      for (const t of f.tenets) expect(TENETS.map((x) => x.id as number)).toContain(t);
    }
  });
});

it.each([
  ['localhost', true], ['127.0.0.1', true], ['127.9.9.9', true], ['[::1]', true], ['app.localhost', true],
  ['10.0.0.1', false], ['128.0.0.1', false], ['localhost.example.com', false], ['[::2]', false], ['app', false],
])('isLoopbackHost(%s) = %s', (host, loopback) => {
  expect(isLoopbackHost(host)).toBe(loopback);
});

describe('ext_authz findings', () => {
  const findings = (extAuthz: string, trusted: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'ztgw-posture-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, `listen: { address: 127.0.0.1:8000, plaintext: true }\ntrusted_proxies: [${trusted}]\next_authz: ${extAuthz}\nroutes: []\n`);
    return postureFindings(loadConfigFile(file, {}))
      .filter((f) => f.id.startsWith('ext-authz-'))
      .map((f) => `${f.id}:${f.severity}`);
  };
  const tls = '{ cert: a.crt, key: a.key }';
  const mtls = '{ cert: a.crt, key: a.key, client_ca: ca.crt }';

  it('high off loopback when any address may ask; medium when it is plaintext off loopback', () => {
    expect(findings('{ listen: 0.0.0.0:9191 }', '0.0.0.0/0')).toEqual(['ext-authz-unguarded:high', 'ext-authz-plaintext:medium']);
    expect(findings(`{ listen: "[::]:9191", tls: ${tls} }`, '::/0')).toEqual(['ext-authz-unguarded:high']);
  });

  it('guarded by a client CA or a narrow trusted_proxies, or on loopback: no unguarded finding', () => {
    expect(findings(`{ listen: 0.0.0.0:9191, tls: ${mtls} }`, '0.0.0.0/0')).toEqual([]);
    expect(findings(`{ listen: 0.0.0.0:9191, tls: ${tls} }`, '10.0.0.0/8')).toEqual([]);
    expect(findings('{ listen: 0.0.0.0:9191 }', '10.0.0.0/8')).toEqual(['ext-authz-plaintext:medium']);
    expect(findings('{ listen: 127.0.0.1:9191 }', '0.0.0.0/0')).toEqual([]);
  });
});
