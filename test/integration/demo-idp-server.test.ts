// examples/demo/idp-server.js, the demo IdP as its own process (deploy/compose's `idp` service): it serves
// discovery at its issuer and has the gateway registered as a client with exactly the configured callbacks
// (ZT_DEMO_GATEWAY_ORIGIN: a comma-separated list of origins, ports kept).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../helpers/build.ts';

let child: ChildProcess;
let issuer: string;

beforeAll(async () => {
  child = spawn(process.execPath, [join(root, 'examples/demo/idp-server.js')], {
    cwd: root,
    env: { PATH: process.env.PATH, ZT_DEMO_IDP_PORT: '0', ZT_DEMO_GATEWAY_ORIGIN: 'https://localhost:18443, https://app.localhost:18444/' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  issuer = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "demo IdP:" line within 20 s; stderr: ${stderr}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const m = /^demo IdP: (http:\/\/127\.0\.0\.1:\d+)\/$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
  });
}, 30_000);

afterAll(async () => {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
});

const authorize = (redirect: string) =>
  `${issuer}/auth?${new URLSearchParams({
    client_id: 'zt-gateway-demo',
    redirect_uri: redirect,
    response_type: 'code',
    scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    state: 's',
    nonce: 'n',
  })}`;

describe('demo IdP server', () => {
  it('serves discovery for its issuer', async () => {
    const res = await request(`${issuer}/.well-known/openid-configuration`);
    expect(res.statusCode).toBe(200);
    const meta = (await res.body.json()) as { issuer: string; authorization_endpoint: string };
    expect(meta.issuer).toBe(issuer);
    expect(meta.authorization_endpoint).toBe(`${issuer}/auth`);
  });

  it('knows the gateway client with its callback (login interaction), and refuses another redirect_uri', async () => {
    const ok = await request(authorize('https://localhost:18443/.zt/callback'));
    await ok.body.dump();
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toMatch(/^\/interaction\/[A-Za-z0-9_-]+$/);

    // The second origin of the list: an app host behind a forward-auth proxy, its port kept.
    const app = await request(authorize('https://app.localhost:18444/.zt/callback'));
    await app.body.dump();
    expect(app.statusCode).toBe(303);

    for (const wrong of ['https://evil.example/.zt/callback', 'https://app.localhost/.zt/callback', 'https://localhost:18444/.zt/callback']) {
      const evil = await request(authorize(wrong));
      const body = await evil.body.text();
      expect(evil.statusCode, wrong).toBe(400);
      expect(body).toContain('redirect_uri did not match any of the client');
    }
  });
});
