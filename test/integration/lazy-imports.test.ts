// A gateway loads what its config uses: started with a public route only, it has not loaded ioredis, ajv,
// swagger-parser, maxmind, openid-client, http-proxy-3, the OpenTelemetry SDK or grpc-js (each costs RSS an idle gateway does not need; http-proxy-3 loads on the first WebSocket upgrade, grpc-js only with `ext_authz`). A reload that
// starts needing validation, GeoIP risk and OIDC loads them then, and the new config serves.
// Observed in a real `zt-gateway start` process through a module resolve hook (test/helpers/load-probe.mjs).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { bin, ensureBuilt, root } from '../helpers/build.ts';
import { tempDir } from '../helpers/gateway.ts';
import { GEOIP_V4 } from '../helpers/geoip.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { freePort, waitFor } from '../helpers/wait.ts';

// Not @opentelemetry/api: prom-client requires it whatever the config (its default metrics' exemplars).
const OTEL = ['@opentelemetry/core', '@opentelemetry/resources', '@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-http'];
const LAZY = ['ioredis', 'ajv', 'ajv-formats', '@apidevtools/swagger-parser', 'maxmind', 'openid-client', 'http-proxy-3', '@grpc/grpc-js', '@grpc/proto-loader', ...OTEL];
const probe = join(root, 'test', 'helpers', 'load-probe.mjs');

let upstream: Upstream;
let gateway: ChildProcess;
let port: number;
let configFile: string;
const loaded = new Set<string>();
const logs: Array<Record<string, unknown>> = [];

const publicOnly = (up: string) => `listen: { address: 127.0.0.1:${port}, plaintext: true }
reload: { watch: false }
routes:
  - { name: app, match: { path: / }, upstream: { url: "${up}" }, public: true }
`;

const needingMore = (up: string) => `listen: { address: 127.0.0.1:${port}, plaintext: true }
reload: { watch: false }
identity_providers:
  corp: { type: oidc, issuer: "http://127.0.0.1:1", client_id: gw, client_secret: the-client-secret }
session: { secret: "a-session-secret-of-at-least-32-characters" }
risk: { geoip_db: "${GEOIP_V4}" }
routes:
  - name: orders
    match: { path: /orders }
    upstream: { url: "${up}" }
    public: true
    validate: { body: { type: object, required: [id], properties: { id: { type: integer } } } }
  - { name: sso, match: { path: /sso }, upstream: { url: "${up}" }, authenticate: [corp], authorize: { allow: [{ authenticated: true }] } }
  - { name: app, match: { path: / }, upstream: { url: "${up}" }, public: true }
`;

async function post(path: string, body: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  await res.body.dump();
  return res.statusCode;
}

describe('lazy imports: a gateway loads what its config uses', () => {
  beforeAll(async () => {
    ensureBuilt();
    upstream = await startUpstream();
    port = await freePort();
    configFile = join(tempDir(), 'gateway.yaml');
    writeFileSync(configFile, publicOnly(upstream.url));
    gateway = spawn(process.execPath, ['--import', probe, bin, 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    gateway.stderr?.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      const lines = err.split('\n');
      err = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('loaded ')) loaded.add(l.slice('loaded '.length));
    });
    let out = '';
    gateway.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('{')) logs.push(JSON.parse(l) as Record<string, unknown>);
    });
    await waitFor(() => logs.some((l) => l.msg === 'zt-gateway started'), { what: 'the gateway to start', timeoutMs: 20_000 });
  });

  afterAll(async () => {
    gateway?.kill('SIGTERM');
    await upstream?.close();
  });

  it('a public-route-only gateway serves without loading ioredis, ajv, swagger-parser, maxmind, openid-client, http-proxy-3, OpenTelemetry or grpc-js', async () => {
    expect(await post('/', '{}')).toBe(200);
    expect(loaded.has('undici')).toBe(true); // the probe sees packages the gateway does load
    expect(LAZY.filter((p) => loaded.has(p))).toEqual([]);
  });

  it('a reload that starts needing validation, GeoIP risk and OIDC loads them, and the new config serves', async () => {
    writeFileSync(configFile, needingMore(upstream.url));
    gateway.kill('SIGHUP');
    await waitFor(() => logs.some((l) => l.msg === 'config reloaded'), { what: 'the reload', timeoutMs: 20_000 });
    expect(['ajv', 'ajv-formats', 'maxmind', 'openid-client'].filter((p) => !loaded.has(p))).toEqual([]);
    expect(await post('/orders', '{"id":7}')).toBe(200);
    expect(await post('/orders', '{"id":"seven"}')).toBe(400); // validated by the ajv the reload loaded
    const sso = await request(`http://127.0.0.1:${port}/sso`, { headers: { accept: 'application/json' } });
    await sso.body.dump();
    expect(sso.statusCode).toBe(401); // the OIDC route is in force: no session, no entry
    expect(loaded.has('ioredis')).toBe(false); // still no Redis in the config
    expect(OTEL.filter((p) => loaded.has(p))).toEqual([]); // nor tracing.otlp
  });

  it('a reload that sets tracing.otlp loads the OpenTelemetry SDK, and requests are served', async () => {
    writeFileSync(configFile, publicOnly(upstream.url) + 'tracing: { otlp: { endpoint: "http://127.0.0.1:1/v1/traces" } }\n');
    const reloads = logs.filter((l) => l.msg === 'config reloaded').length;
    gateway.kill('SIGHUP');
    await waitFor(() => logs.filter((l) => l.msg === 'config reloaded').length > reloads, { what: 'the reload', timeoutMs: 20_000 });
    expect(['@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-http'].filter((p) => !loaded.has(p))).toEqual([]);
    expect(await post('/', '{}')).toBe(200);
  });
});
