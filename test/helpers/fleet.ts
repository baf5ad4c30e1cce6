// login.host tests: one gateway serving auth.localhost, a.localhost and b.localhost (a certificate for all three
// from a test CA), its OIDC client registered at oidc-provider with ONE redirect URI, the auth host's.
import { Agent } from 'undici';
import { createCA } from '../../tools/pki.ts';
import { startGateway, type TestGateway } from './gateway.ts';
import { send, SESSION_SECRET, type CookieJar, type Reply, type TestOP } from './oidc-provider.ts';

export const FLEET_HOSTS = ['auth.localhost', 'a.localhost', 'b.localhost'] as const;

export interface FleetPki {
  ca: string;
  cert: string;
  key: string;
}

export async function fleetPki(): Promise<FleetPki> {
  const ca = await createCA('login-fleet test CA');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost', ...FLEET_HOSTS], ips: ['127.0.0.1'] });
  return { ca: ca.cert, ...leaf };
}

/** An undici Agent that trusts only `ca`, checks the URL's own host name, and always connects to 127.0.0.1. */
export function fleetAgent(ca: string): Agent {
  return new Agent({
    connect: {
      ca,
      rejectUnauthorized: true,
      lookup: (_host: string, o: { all?: boolean }, cb: (...a: unknown[]) => void) =>
        o?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
    } as object,
  });
}

export interface FleetGateway {
  gw: TestGateway;
  port: number;
  /** https://<host>:<port> */
  origin(host: (typeof FLEET_HOSTS)[number]): string;
  clientId: string;
  agent: Agent;
  send(url: string, opts?: Parameters<typeof send>[1]): Promise<Reply>;
  close(): Promise<void>;
}

/** The gateway, with `routes` (YAML list items) and `login` (the `login:` value); registers its client at `op`. */
export async function startFleetGateway(
  op: TestOP,
  pki: FleetPki,
  opts: {
    clientId: string;
    routes: string;
    login?: string;
    state?: string;
    now?: () => number;
    logLevel?: string;
    /** listen.public_urls (a second instance that clients reach on the first one's port, as behind a balancer). */
    publicUrls?: string[];
    /** A second instance of an already registered client: no registration. */
    registered?: boolean;
  },
): Promise<FleetGateway> {
  const secret = `secret-of-${opts.clientId}`;
  const yaml = `listen:
  address: 127.0.0.1:0
  tls: { cert: gw.crt, key: gw.key }
${opts.publicUrls ? `  public_urls: [${opts.publicUrls.join(', ')}]` : ''}
shutdown: { drain_timeout: 1s }
log: { level: ${opts.logLevel ?? 'info'}, access: true }
${opts.state ?? ''}
${opts.login === undefined ? '' : `login: ${opts.login}`}
identity_providers:
  corp: { type: oidc, issuer: "${op.issuer}", client_id: ${opts.clientId}, client_secret: "\${env:OIDC_SECRET}", timeout: 5s }
session: { secret: "\${env:SESSION_SECRET}" }
routes:
${opts.routes}
`;
  const gw = await startGateway(yaml, {
    files: { 'gw.crt': pki.cert, 'gw.key': pki.key },
    env: { OIDC_SECRET: secret, SESSION_SECRET },
    ...(opts.now ? { now: opts.now } : {}),
  });
  const origin = (host: string) => `https://${host}:${gw.port}`;
  // ONE redirect URI: the auth host's.
  if (!opts.registered) await op.addClient({ client_id: opts.clientId, client_secret: secret, origin: origin('auth.localhost') });
  const agent = fleetAgent(pki.ca);
  return {
    gw,
    port: gw.port,
    origin,
    clientId: opts.clientId,
    agent,
    send: (url, o = {}) => send(url, { ...o, dispatcher: agent }),
    async close() {
      await gw.close();
      await agent.close();
    },
  };
}

/** Routes for a.localhost and b.localhost (`/app` to `upstream`, `/live` to the WebSocket echo) and the auth host's portal. */
export function fleetRoutes(upstream: string, echo: string): string {
  const app = (host: string) => `  - name: ${host.split('.')[0]}-app
    match: { host: ${host}, path: /app }
    upstream: { url: ${upstream} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
  - name: ${host.split('.')[0]}-live
    match: { host: ${host}, path: /live }
    upstream: { url: ${echo} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;
  return `${app('a.localhost')}${app('b.localhost')}  - name: portal
    match: { host: auth.localhost, path: /portal }
    upstream: { url: ${upstream} }
    authenticate: [corp]
    authorize: { allow: [{ authenticated: true }] }
`;
}

export type { CookieJar };
