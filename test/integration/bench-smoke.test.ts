// Keeps `npm run bench` working: a few seconds of the harness on one scenario. No timing assertions.
// Two runs: the defaults (wrk and nginx when installed) and the fallbacks (autocannon, the node upstream).
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function runBench(only: string, extra: string[]) {
  const out = join(mkdtempSync(join(tmpdir(), 'ztgw-bench-smoke-')), 'latest.json');
  const r = spawnSync(process.execPath, ['bench/run.js', '--smoke', '--only', only, '--large-bytes', '0', '--out', out, ...extra], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/\| bare undici proxy \| [\d,]+ \|/);
  expect(r.stdout).toMatch(/WebSocket echo/);
  return { stdout: r.stdout, json: JSON.parse(readFileSync(out, 'utf8')) as { loader: string; upstream: string; rows: Array<{ name: string; rps: number; ok: boolean }> } };
}

describe('bench harness smoke', () => {
  it('runs one scenario against the bare undici proxy and writes its JSON', () => {
    const { stdout, json } = runBench('public route', []);
    expect(stdout).toMatch(/\| zt-gateway public route \| [\d,]+ \|.*\| yes \|/);
    expect(json.rows.map((x) => x.name)).toEqual(['bare undici proxy', 'zt-gateway public route', 'zt-gateway public route, POST 1 KB JSON']);
    for (const row of json.rows) {
      expect(row.ok).toBe(true);
      expect(row.rps).toBeGreaterThan(0);
    }
  }, 150_000);

  it('runs the full pipeline over TLS as HTTP/1.1 and as HTTP/2 with h2load', () => {
    const { stdout, json } = runBench('TLS', []);
    expect(stdout).toMatch(/\| zt-gateway full pipeline, TLS HTTP\/1\.1 \(h2load --h1\) \| [\d,]+ \|.*\| yes \|/);
    expect(stdout).toMatch(/\| zt-gateway full pipeline, TLS HTTP\/2 \(h2load\) \| [\d,]+ \|.*\| yes \|/);
    for (const row of json.rows) expect(row.rps).toBeGreaterThan(0);
  }, 150_000);

  it('runs the OIDC session scenario with autocannon against the node upstream', () => {
    const { stdout, json } = runBench('OIDC', ['--loader', 'autocannon', '--upstream', 'node']);
    expect(json.loader).toBe('autocannon');
    expect(json.upstream).toBe('node');
    expect(stdout).toMatch(/\| zt-gateway OIDC session cookie route \| [\d,]+ \|.*\| yes \|/);
    expect(json.rows.map((x) => x.name)).toEqual(['bare undici proxy', 'zt-gateway OIDC session cookie route']);
    for (const row of json.rows) expect(row.rps).toBeGreaterThan(0);
  }, 150_000);

  it('runs the bare proxy doing the gateway\'s header work, with the gateway\'s own security headers', () => {
    const { stdout, json } = runBench('gateway headers', []);
    expect(json.rows.map((x) => x.name)).toEqual(['bare undici proxy', 'bare undici proxy + gateway headers']);
    expect(stdout).toMatch(/\| bare undici proxy \+ gateway headers \| [\d,]+ \|.*\| yes \|/);
    for (const row of json.rows) expect(row.rps).toBeGreaterThan(0);
  }, 150_000);
});

describe('bare undici proxy with GATEWAY_HEADERS', () => {
  it('adds the given response headers and a request id, and the forwarding headers upstream', async () => {
    let seen: http.IncomingHttpHeaders = {};
    const up = http.createServer((req, res) => {
      seen = req.headers;
      res.end('up');
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const child = spawn(process.execPath, ['bench/servers/undici-proxy.js'], {
      env: { ...process.env, TARGET: `http://127.0.0.1:${(up.address() as AddressInfo).port}`, GATEWAY_HEADERS: JSON.stringify(['x-frame-options', 'DENY', 'referrer-policy', 'no-referrer']) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const port = await new Promise<number>((resolve) => child.stdout.on('data', (d) => resolve(Number(/"ready":(\d+)/.exec(String(d))?.[1]))));
      const res = await fetch(`http://127.0.0.1:${port}/x`);
      expect(await res.text()).toBe('up');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(seen['x-request-id']).toBe(res.headers.get('x-request-id'));
      expect(seen.forwarded).toBe(`for=127.0.0.1;proto=http;host="127.0.0.1:${port}"`);
      expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    } finally {
      child.kill();
      await new Promise<void>((r) => up.close(() => r()));
    }
  });
});

describe('open-loop load generator', () => {
  async function server(status: number) {
    const seen: string[] = [];
    const srv = http.createServer((req, res) => {
      seen.push(String(req.headers['x-probe']));
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    return { seen, url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/p?q=1`, close: () => new Promise<void>((r) => srv.close(() => r())) };
  }
  function run(url: string, rate: number, seconds: number, warmup: number) {
    return new Promise<Record<string, number>>((resolve, reject) => {
      const child = spawn(process.execPath, ['bench/open-loop.js', url, String(rate), String(seconds), JSON.stringify({ 'x-probe': 'yes' }), String(warmup)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(JSON.parse(out) as Record<string, number>);
        else reject(new Error(`open-loop exited ${code}: ${out}`));
      });
    });
  }

  it('sends rate × seconds requests after the warm-up ones, with the headers, and reports ordered percentiles', async () => {
    const s = await server(200);
    try {
      const r = await run(s.url, 300, 1, 0.2);
      expect(r).toMatchObject({ rate: 300, seconds: 1, requests: 300, failed: 0, non2xx: 0 });
      expect(s.seen).toHaveLength(360);
      expect(s.seen.every((h) => h === 'yes')).toBe(true);
      expect(r.p50).toBeGreaterThan(0);
      expect(r.p50).toBeLessThanOrEqual(r.p90 as number);
      expect(r.p90).toBeLessThanOrEqual(r.p99 as number);
      expect(r.p99).toBeLessThanOrEqual(r.max as number);
    } finally {
      await s.close();
    }
  });

  it('counts answers outside 2xx', async () => {
    const s = await server(503);
    try {
      const r = await run(s.url, 200, 0.5, 0);
      expect(r).toMatchObject({ requests: 100, failed: 0, non2xx: 100 });
    } finally {
      await s.close();
    }
  });
});
