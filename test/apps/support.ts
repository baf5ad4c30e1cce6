// What the real-app tests (test/apps/*.test.ts) share: a TLS gateway for https://localhost:<port> (a test CA
// and certificate) whose OIDC client is registered at the demo IdP (examples/demo/idp.js: oidc-provider with
// an HTML login form a browser fills in), Debian's Chromium trusting exactly that certificate, and the
// "must run under CI=true" rule for apps that may be missing on a developer machine.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser } from 'playwright-core';
import { CHROMIUM, launchChromium as launchTrusting } from '../helpers/browser.ts';
import { describeNeeding } from '../helpers/requires.ts';
import { createCA } from '../../tools/pki.ts';
// The demo IdP is plain JavaScript (examples/ is not type-checked).
import { DEMO_ACCOUNTS, startDemoIdp } from '../../examples/demo/idp.js';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export { CHROMIUM };
export const inCi = process.env.CI === 'true';
export const SCREENSHOTS = join(root, 'test-output', 'apps');
export const STEP_MS = 15_000;

/** The demo IdP's account: sub `alice`, email alice@example.com, groups [sales]. */
export const ALICE = { login: 'alice', password: DEMO_ACCOUNTS.alice.password as string, email: DEMO_ACCOUNTS.alice.email as string, groups: [...DEMO_ACCOUNTS.alice.groups] as string[] };

/** A suite that needs an app (or Chromium) the machine may lack: test/helpers/requires.ts. */
export const describeApp = describeNeeding;

/** Chromium trusting exactly `cert` (no ignoreHTTPSErrors: any other certificate problem still fails). */
export function launchChromium(cert: string): Promise<Browser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return launchTrusting([cert]);
}

export interface AppGateway {
  gw: TestGateway;
  /** https://localhost:<port> */
  origin: string;
  /** The demo IdP's origin (http://127.0.0.1:<port>). */
  idpOrigin: string;
  /** PEM: the test CA, and the gateway's certificate (for Chromium). */
  ca: string;
  cert: string;
  close(): Promise<void>;
}

export const SESSION_SECRET = 'apps-test-session-secret-0123456789-abcdefghij';
const CLIENT_SECRET = 'apps-test-client-secret-0123456789';

/**
 * The demo IdP and a TLS gateway with `identity_providers.idp` (OIDC, that IdP) plus `providers` (more YAML
 * lines under identity_providers), `extra` top-level YAML and `routes`; the gateway's origin is registered at
 * the IdP once its port is known.
 */
export async function startAppGateway(opts: { routes: string; providers?: string; extra?: string; files?: Record<string, string> }): Promise<AppGateway> {
  const ca = await createCA('zt-gateway apps test CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const idp = await startDemoIdp({ host: '127.0.0.1', port: 0, gatewayCa: ca.cert });
  const yaml = `listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
shutdown: { drain_timeout: 1s }
log: { level: warn, access: false }
${opts.extra ?? ''}
identity_providers:
  idp:
    type: oidc
    issuer: "${idp.issuer}"
    client_id: apps-test
    client_secret: "\${env:OIDC_SECRET}"
    scopes: [openid, email, profile, groups]
    claims: { email: email, groups: groups }
${opts.providers ?? ''}
session: { secret: "\${env:SESSION_SECRET}" }
routes:
${opts.routes}
`;
  let gw: TestGateway;
  try {
    gw = await startGateway(yaml, { files: { 'gw.crt': leaf.cert, 'gw.key': leaf.key, ...opts.files }, env: { OIDC_SECRET: CLIENT_SECRET, SESSION_SECRET } });
  } catch (err) {
    await idp.close();
    throw err;
  }
  const origin = `https://localhost:${gw.port}`;
  await idp.register({ client_id: 'apps-test', client_secret: CLIENT_SECRET, origin });
  return {
    gw,
    origin,
    idpOrigin: new URL(idp.issuer).origin,
    ca: ca.cert,
    cert: leaf.cert,
    async close() {
      await gw.close().catch(() => undefined);
      await idp.close();
    },
  };
}

const NODE_RED_DIR = join(root, 'test', 'apps', 'node-red');
export const NODE_RED_BIN = join(NODE_RED_DIR, 'node_modules', 'node-red', 'red.js');

/**
 * Node-RED is a sub-project (test/apps/node-red: package.json + package-lock.json), installed without its
 * optional native module. .ci/run installs it; a fresh clone running `npm test` gets it here. Returns why it
 * is unavailable, or undefined.
 */
export function ensureNodeRed(): string | undefined {
  if (existsSync(NODE_RED_BIN)) return undefined;
  const run = spawnSync('npm', ['ci', '--omit=optional', '--no-audit', '--no-fund', '--prefix', NODE_RED_DIR], { cwd: root, encoding: 'utf8', timeout: 180_000 });
  if (run.status === 0 && existsSync(NODE_RED_BIN)) return undefined;
  return `Node-RED could not be installed (npm ci --omit=optional --prefix test/apps/node-red: ${run.error?.message ?? `exit ${run.status}`}: ${(run.stderr ?? '').slice(-400)})`;
}
