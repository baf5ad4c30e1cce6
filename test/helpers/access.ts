// Shared by the access-state tests: HS256 bearer tokens, an admin API client, a config with protected,
// grant and fail-open routes, and calls that report what the upstream received.
import { createHash, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { createCA } from '../../tools/pki.ts';
import { startGateway, type TestGateway } from './gateway.ts';
import type { Received, Upstream } from './upstream.ts';
import { waitFor } from './wait.ts';

export const JWT_SECRET = 'access-state-test-secret-0123456789abcdef';
export const ADMIN_TOKEN = 'zt-admin-test-token-5b1f0c9e2d7a4f86';
export const ADMIN_TOKEN_HASH = createHash('sha256').update(ADMIN_TOKEN).digest('hex');

export async function token(sub: string, opts: { groups?: string[]; jti?: string; ttlS?: number } = {}): Promise<string> {
  return new SignJWT({ groups: opts.groups ?? [], jti: opts.jti ?? randomUUID() })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer('https://ci.test')
    .setAudience('gw')
    .setIssuedAt()
    .setExpirationTime(`${opts.ttlS ?? 600}s`)
    .sign(new TextEncoder().encode(JWT_SECRET));
}

export interface AccessConfigOptions {
  upstream: string;
  redis?: string;
  tokenHash?: string | null;
  devices?: boolean;
  grantMax?: string;
  extra?: string;
}

/** Routes: /app (any verified caller), /db (needs grant prod-db-admin), /open (on_state_error: allow). */
export function accessConfig(o: AccessConfigOptions): string {
  const hash = o.tokenHash === undefined ? ADMIN_TOKEN_HASH : o.tokenHash;
  return `listen: { address: 127.0.0.1:0, plaintext: true }
admin: { listen: 127.0.0.1:0${hash === null ? '' : `, token_hash: "${hash}"`} }
shutdown: { drain_timeout: 1s }
trusted_proxies: [127.0.0.1/32]
${o.redis ? `state: { redis: "${o.redis}", max_staleness: 1500ms }` : ''}
${o.devices ? 'devices: { inventory: devices.yaml, header: X-Device-Id }' : ''}
identity_providers:
  ci: { type: jwt, issuer: "https://ci.test", audiences: [gw], algorithms: [HS256], secret: "${JWT_SECRET}" }
grants:
  prod-db-admin: { approvers: [dba], max_duration: ${o.grantMax ?? '1h'} }
${o.extra ?? ''}
routes:
  - name: app
    match: { path: /app }
    upstream: { url: ${o.upstream}, timeout: 2s, connect_timeout: 1s }
    authenticate: [ci]
    authorize: { allow: [{ authenticated: true }] }
  - name: db
    match: { path: /db }
    upstream: { url: ${o.upstream}, timeout: 2s, connect_timeout: 1s }
    authenticate: [ci]
    authorize: { allow: [{ grant: prod-db-admin }] }
  - name: open
    match: { path: /open }
    upstream: { url: ${o.upstream}, timeout: 2s, connect_timeout: 1s }
    authenticate: [ci]
    authorize: { allow: [{ authenticated: true }] }
    on_state_error: allow
  - name: public
    match: { path: /pub }
    upstream: { url: ${o.upstream}, timeout: 2s, connect_timeout: 1s }
    public: true
`;
}

export const DEVICES_YAML = `devices:
  - { id: laptop-1, owner: alice, trusted: true }
  - { id: laptop-2, owner: bob, trusted: true }
`;

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  forwarded: Received[];
}

async function answer(res: Awaited<ReturnType<typeof request>>, upstream: Upstream | undefined, before: number): Promise<Answer> {
  const text = await res.body.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.statusCode, headers: res.headers, body, forwarded: upstream ? upstream.received.slice(before) : [] };
}

/** A request through the main listener, with a bearer token (and extra headers). */
export async function call(gw: TestGateway, upstream: Upstream, path: string, bearer?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const before = upstream.received.length;
  const res = await request(`${gw.url}${path}`, { headers: { ...headers, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) } });
  return answer(res, upstream, before);
}

/** A JSON POST through the main listener (grants). */
export async function post(gw: TestGateway, path: string, bearer: string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return answer(res, undefined, 0);
}

/** An admin API call; `auth: null` sends no Authorization header. */
export async function admin(gw: TestGateway, method: 'GET' | 'POST' | 'DELETE', path: string, opts: { auth?: string | null; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const auth = opts.auth === undefined ? `Bearer ${ADMIN_TOKEN}` : opts.auth;
  const headers: Record<string, string> = { ...opts.headers };
  if (auth !== null) headers.authorization = auth;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${gw.gateway.adminUrl}${path}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
  });
  return answer(res, undefined, 0);
}

/** Polls (bounded, through waitFor) until `check` holds; returns the elapsed milliseconds. */
export async function within(ms: number, check: () => Promise<boolean>, step = 20): Promise<number> {
  const start = Date.now();
  await waitFor(check, { timeoutMs: ms, intervalMs: step, what: `a condition to hold within ${ms} ms` });
  return Date.now() - start;
}

/** A gateway whose admin API is HTTPS with client certificates (and the token), in front of `upstreamUrl`. */
export interface AdminMtlsGateway {
  readonly gw: TestGateway;
  /** The CA the admin listener's certificate chains to (clients trust it explicitly). */
  readonly serverCa: string;
  /** A client certificate from admin.tls.client_ca: an admin. */
  readonly admin: { cert: string; key: string };
  /** An Agent for the admin listener, with a client certificate or none; closed by close(). */
  agent(cert?: { cert: string; key: string }): Agent;
  close(): Promise<void>;
}

export async function startAdminMtlsGateway(upstreamUrl: string): Promise<AdminMtlsGateway> {
  const serverCa = await createCA('admin server CA');
  const clientCa = await createCA('admin client CA');
  const leaf = await serverCa.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const admin = await clientCa.issue({ cn: 'ops-laptop', client: true });
  const yaml = accessConfig({ upstream: upstreamUrl, tokenHash: null }).replace(
    'admin: { listen: 127.0.0.1:0 }',
    `admin:\n  listen: 127.0.0.1:0\n  token_hash: "${ADMIN_TOKEN_HASH}"\n  tls: { cert: admin.crt, key: admin.key, client_ca: clients.crt }`,
  );
  const gw = await startGateway(yaml, { files: { 'admin.crt': leaf.cert, 'admin.key': leaf.key, 'clients.crt': clientCa.cert } });
  const agents: Agent[] = [];
  return {
    gw,
    serverCa: serverCa.cert,
    admin,
    agent(cert) {
      const a = new Agent({ connect: { ca: serverCa.cert, servername: 'localhost', ...(cert ?? {}) } });
      agents.push(a);
      return a;
    },
    async close() {
      for (const a of agents) await a.close();
      await gw.close();
    },
  };
}
