// Certificates and data files rotated in place take effect without a config change (cert-manager writes the
// files; a Kubernetes projected volume swaps its `..data` symlink), a bad file keeps the last good one, and
// several certificates are chosen by SNI. zt_certificate_expiry_seconds reports each certificate file.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createCA, type CertificateAuthority, type Issued } from '../../tools/pki.ts';
import { captureLogger, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { scrape } from '../helpers/metrics.ts';
import { apiKeyFixture } from '../helpers/api-keys.ts';
import { hashKey } from '../../src/authn/api-key.ts';
import { Gateway } from '../../src/server/gateway.ts';

let ca: CertificateAuthority;
let upstream: Upstream;
let gw: TestGateway;
let defaultCert: Issued;
let aCert: Issued;
const dir = tempDir('ztgw-rotate-');
const keys = apiKeyFixture('rotate');
const NEW_KEY = 'ztk_rotate_new_0123456789abcdefghijklm';
/** Rotation must land within 2 s; one more second of slack for a loaded CI machine. */
const ROTATION_BOUND_MS = 3000;

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

/** A fresh TLS connection (no session reuse): the fingerprint of the leaf certificate the server presented. */
function presented(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.cert, ...(servername ? { servername } : {}), rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert.fingerprint256);
    });
    socket.once('error', reject);
  });
}

/** A Kubernetes-style projected volume: `vol/tls.crt` → `..data/tls.crt`, `..data` → a timestamped dir. */
function projectVolume(version: string, cert: Issued): void {
  const vol = join(dir, 'vol');
  const real = join(vol, `..${version}`);
  mkdirSync(real, { recursive: true });
  writeFileSync(join(real, 'tls.crt'), cert.cert);
  writeFileSync(join(real, 'tls.key'), cert.key);
  const tmp = join(vol, '..data_tmp');
  symlinkSync(`..${version}`, tmp);
  renameSync(tmp, join(vol, '..data')); // atomic, as the kubelet does it
}

function config(): string {
  return `listen:
  address: 127.0.0.1:0
  tls:
    cert: gw.crt
    key: gw.key
    certificates:
      - { hosts: [a.test, A2.test], cert: vol/tls.crt, key: vol/tls.key }
      - { hosts: ["*.b.test"], cert: b.crt, key: b.key }
admin: { listen: 127.0.0.1:0, metrics: public }
shutdown: { drain_timeout: 1s }
identity_providers:
  keys: { type: api_key, keys_file: api-keys.yaml }
routes:
  - name: svc
    match: { path: / }
    upstream: { url: ${upstream.url}, timeout: 2s, connect_timeout: 1s }
    authenticate: [keys]
    authorize: { allow: [{ authenticated: true }] }
`;
}

beforeAll(async () => {
  ca = await createCA('rotation test CA');
  upstream = await startUpstream();
  defaultCert = await ca.issue({ cn: 'default', dns: ['localhost'], ips: ['127.0.0.1'] });
  aCert = await ca.issue({ cn: 'a', dns: ['a.test', 'a2.test'] });
  const bCert = await ca.issue({ cn: 'b', dns: ['*.b.test'] });
  mkdirSync(join(dir, 'vol'));
  projectVolume('2026_12_03_1', aCert);
  symlinkSync('..data/tls.crt', join(dir, 'vol', 'tls.crt'));
  symlinkSync('..data/tls.key', join(dir, 'vol', 'tls.key'));
  gw = await startGateway(config(), {
    dir,
    watch: true,
    files: { 'gw.crt': defaultCert.cert, 'gw.key': defaultCert.key, 'b.crt': bCert.cert, 'b.key': bCert.key, 'api-keys.yaml': keys.yaml },
  });
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('certificates chosen by SNI (listen.tls.certificates)', () => {
  it('serves each name its certificate and the default one otherwise', async () => {
    const a = fingerprint(aCert.cert);
    expect(await presented(gw.port, 'a.test')).toBe(a);
    expect(await presented(gw.port, 'A2.TEST')).toBe(a); // names compare case-insensitively
    expect(await presented(gw.port, 'x.b.test')).not.toBe(fingerprint(defaultCert.cert));
    expect(await presented(gw.port, 'x.b.test')).toBe(await presented(gw.port, 'y.b.test'));
    // The wildcard covers one label only; the apex and deeper names get the default.
    expect(await presented(gw.port, 'b.test')).toBe(fingerprint(defaultCert.cert));
    expect(await presented(gw.port, 'z.y.b.test')).toBe(fingerprint(defaultCert.cert));
    expect(await presented(gw.port, 'unknown.test')).toBe(fingerprint(defaultCert.cert));
    expect(await presented(gw.port)).toBe(fingerprint(defaultCert.cert)); // no SNI (an IP address)
  });

  it('a client verifying the name gets through with the SNI certificate', async () => {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: gw.port, ca: ca.cert, servername: 'a.test' }, () => {
        resolve(s.authorized);
        s.destroy();
      });
      s.once('error', () => resolve(false));
    });
    expect(ok).toBe(true);
  });

  it('refuses at load a certificate that does not cover a listed host, and a host listed twice', async () => {
    const bad = tempDir('ztgw-sni-bad-');
    const other = await ca.issue({ cn: 'other', dns: ['other.test'] });
    const files = { 'gw.crt': defaultCert.cert, 'gw.key': defaultCert.key, 'o.crt': other.cert, 'o.key': other.key };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(bad, name), content);
    const yaml = (certs: string) => `listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key, certificates: [${certs}] }
routes: []
`;
    const attempt = async (certs: string): Promise<string> => {
      writeFileSync(join(bad, 'gateway.yaml'), yaml(certs));
      const g = new Gateway({ configFile: join(bad, 'gateway.yaml'), env: {}, logger: captureLogger().logger, watch: false });
      return g.start().then(
        async () => {
          await g.stop();
          return 'started';
        },
        (err: Error) => err.message,
      );
    };
    expect(await attempt('{ hosts: [nope.test], cert: o.crt, key: o.key }')).toMatch(/listen\.tls\.certificates\[0\]\.hosts\[0\].*does not cover nope\.test/);
    expect(await attempt('{ hosts: ["*.other.test"], cert: o.crt, key: o.key }')).toMatch(/does not cover \*\.other\.test/);
    expect(await attempt('{ hosts: [other.test], cert: o.crt, key: o.key }, { hosts: [OTHER.test], cert: o.crt, key: o.key }')).toMatch(
      /listen\.tls\.certificates\[1\]\.hosts\[0\].*already served by listen\.tls\.certificates\[0\]/,
    );
    expect(await attempt('{ hosts: [other.test], cert: o.crt, key: gw.key }')).toMatch(/listen\.tls\.certificates\[0\]\.cert.*invalid/i);
    expect(await attempt('{ hosts: [other.test], cert: o.crt, key: o.key }')).toBe('started');
  });
});

describe('files rotated in place', () => {
  it('the default certificate replaced in place is served within 2 s, with no config change', async () => {
    const next = await ca.issue({ cn: 'default-2', dns: ['localhost'], ips: ['127.0.0.1'] });
    writeFileSync(join(dir, 'gw.key'), next.key);
    writeFileSync(join(dir, 'gw.crt'), next.cert);
    const started = Date.now();
    await waitFor(async () => (await presented(gw.port)) === fingerprint(next.cert), { timeoutMs: ROTATION_BOUND_MS, intervalMs: 100, what: 'the new certificate' });
    expect(Date.now() - started).toBeLessThan(ROTATION_BOUND_MS);
    defaultCert = next;
    // The other certificates are untouched by the reload.
    expect(await presented(gw.port, 'a.test')).toBe(fingerprint(aCert.cert));
  });

  it('a projected volume swapping its ..data symlink rotates the SNI certificate', async () => {
    const next = await ca.issue({ cn: 'a-2', dns: ['a.test', 'a2.test'] });
    projectVolume('2026_12_03_2', next);
    await waitFor(async () => (await presented(gw.port, 'a.test')) === fingerprint(next.cert), {
      timeoutMs: ROTATION_BOUND_MS,
      intervalMs: 100,
      what: 'the swapped certificate',
    });
    aCert = next;
  });

  it('a bad file keeps the last good certificate and is logged; fixing it applies it', async () => {
    const reloadsFailedBefore = gw.logs.filter((l) => l.msg === 'config reload failed; keeping the running config').length;
    writeFileSync(join(dir, 'gw.crt'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    await waitFor(() => gw.logs.filter((l) => l.msg === 'config reload failed; keeping the running config').length > reloadsFailedBefore, {
      timeoutMs: ROTATION_BOUND_MS,
      intervalMs: 50,
      what: 'the failed reload',
    });
    expect(await presented(gw.port)).toBe(fingerprint(defaultCert.cert));
    const fixed = await ca.issue({ cn: 'default-3', dns: ['localhost'], ips: ['127.0.0.1'] });
    writeFileSync(join(dir, 'gw.key'), fixed.key);
    writeFileSync(join(dir, 'gw.crt'), fixed.cert);
    await waitFor(async () => (await presented(gw.port)) === fingerprint(fixed.cert), { timeoutMs: ROTATION_BOUND_MS, intervalMs: 100, what: 'the fixed certificate' });
    defaultCert = fixed;
  });

  it('an API keys file changed in place takes effect without a config change', async () => {
    const call = async (key: string): Promise<number> => {
      const { Agent } = await import('undici');
      const dispatcher = new Agent({ connect: { ca: ca.cert, servername: 'localhost' } });
      try {
        const res = await request(`${gw.url}/svc`, { headers: { authorization: `ApiKey ${key}` }, dispatcher });
        await res.body.dump();
        return res.statusCode;
      } finally {
        await dispatcher.close();
      }
    };
    expect(await call(keys.ops)).toBe(200);
    expect(await call(NEW_KEY)).toBe(401);
    writeFileSync(join(dir, 'api-keys.yaml'), `${keys.yaml}  - { id: new, hash: ${hashKey(NEW_KEY)}, subject: svc-new }\n`);
    await waitFor(async () => (await call(NEW_KEY)) === 200, { timeoutMs: ROTATION_BOUND_MS, intervalMs: 100, what: 'the new key' });
    expect(await call(keys.ops)).toBe(200);
  });
});

describe('zt_certificate_expiry_seconds', () => {
  it('reports each certificate file: seconds until its earliest certificate expires', async () => {
    const m = await scrape(gw.gateway.adminUrl as string);
    const expiry = (file: string): number | undefined => m.value('zt_certificate_expiry_seconds', { file: join(dir, file) });
    const thirtyDays = 30 * 86_400;
    for (const f of ['gw.crt', 'b.crt', 'vol/tls.crt']) {
      const v = expiry(f);
      expect(v, f).toBeDefined();
      expect(Math.abs((v as number) - thirtyDays), f).toBeLessThan(600);
    }
    // Key files are not certificates: no series.
    expect(expiry('gw.key')).toBeUndefined();
  });
});

describe('the admin listener certificate', () => {
  it('rotates in place like the main one', async () => {
    const adminDir = tempDir('ztgw-rotate-admin-');
    const first = await ca.issue({ cn: 'admin-1', dns: ['localhost'], ips: ['127.0.0.1'] });
    const g = await startGateway(
      `listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0, token_hash: "${'a'.repeat(64)}", tls: { cert: admin.crt, key: admin.key } }
routes: []
`,
      { dir: adminDir, watch: true, files: { 'admin.crt': first.cert, 'admin.key': first.key } },
    );
    try {
      const port = Number(new URL(g.gateway.adminUrl as string).port);
      expect(await presented(port)).toBe(fingerprint(first.cert));
      const next = await ca.issue({ cn: 'admin-2', dns: ['localhost'], ips: ['127.0.0.1'] });
      writeFileSync(join(adminDir, 'admin.key'), next.key);
      writeFileSync(join(adminDir, 'admin.crt'), next.cert);
      await waitFor(async () => (await presented(port)) === fingerprint(next.cert), { timeoutMs: ROTATION_BOUND_MS, intervalMs: 100, what: 'the new admin certificate' });
      // A key that does not match: the reload fails and the admin listener keeps the last good pair.
      const other = await ca.issue({ cn: 'admin-3', dns: ['localhost'] });
      writeFileSync(join(adminDir, 'admin.key'), other.key);
      await waitFor(() => g.logs.some((l) => l.msg === 'config reload failed; keeping the running config'), { timeoutMs: ROTATION_BOUND_MS, what: 'the failed reload' });
      expect(await presented(port)).toBe(fingerprint(next.cert));
    } finally {
      await g.close();
    }
  });
});

describe('error page templates (error_pages.dir)', () => {
  it('an edited template is served within 2 s, with no config change', async () => {
    const pagesDir = tempDir('ztgw-rotate-pages-');
    mkdirSync(join(pagesDir, 'pages'));
    writeFileSync(join(pagesDir, 'pages', 'default.html'), '<p>first {{status}}</p>');
    const g = await startGateway(
      `listen: { address: 127.0.0.1:0, plaintext: true }
error_pages: { dir: pages }
routes: []
`,
      { dir: pagesDir, watch: true },
    );
    const page = async (): Promise<string> => {
      const res = await request(`${g.url}/nowhere`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
      expect(res.statusCode).toBe(404);
      return res.body.text();
    };
    try {
      expect(await page()).toBe('<p>first 404</p>');
      writeFileSync(join(pagesDir, 'pages', 'default.html'), '<p>second {{status}}</p>');
      await waitFor(async () => (await page()) === '<p>second 404</p>', { timeoutMs: ROTATION_BOUND_MS, intervalMs: 100, what: 'the edited template' });
    } finally {
      await g.close();
    }
  });
});
