#!/usr/bin/env node
// The demo OpenID provider on its own, for deploy/compose (run.js starts it in-process instead). It registers
// one gateway as its client and serves until SIGTERM/SIGINT. Everything here is DEMO-ONLY.
//
//   ZT_DEMO_IDP_HOST    address to listen on (127.0.0.1; 0.0.0.0 in a container whose port is published)
//   ZT_DEMO_IDP_PORT    port (9000; 0 picks a free one)
//   ZT_DEMO_IDP_ISSUER  issuer URL (http://127.0.0.1:<port>): what the browser and the gateway both use
//   ZT_DEMO_CLIENT_ID / ZT_DEMO_CLIENT_SECRET_FILE   the gateway's client (zt-gateway-demo / DEMO-ONLY-oidc-client-secret.txt)
//   ZT_DEMO_GATEWAY_ORIGIN   the gateway's https origin (https://localhost:8443): callback, logout and back-channel URIs;
//                       a comma-separated list registers every origin's /.zt/callback (app hosts behind a
//                       forward-auth proxy, each with its port: https://app.example:8444), back-channel on the first
//   ZT_DEMO_GATEWAY_CA  PEM file trusted for back-channel logout deliveries to the gateway (DEMO-ONLY-ca.crt)
//
// Prints `demo IdP: <issuer>/` once it listens.
import { readFileSync } from 'node:fs';
import { startDemoIdp } from './idp.js';

const env = process.env;
const here = new URL('.', import.meta.url);
const port = Number(env.ZT_DEMO_IDP_PORT ?? 9000);
const secretFile = env.ZT_DEMO_CLIENT_SECRET_FILE ?? new URL('DEMO-ONLY-oidc-client-secret.txt', here);
const caFile = env.ZT_DEMO_GATEWAY_CA ?? new URL('certs/DEMO-ONLY-ca.crt', here);

const idp = await startDemoIdp({
  host: env.ZT_DEMO_IDP_HOST ?? '127.0.0.1',
  port,
  issuer: env.ZT_DEMO_IDP_ISSUER ?? (port === 0 ? undefined : `http://127.0.0.1:${port}`),
  gatewayCa: readFileSync(caFile, 'utf8'),
  log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
});
await idp.register({
  client_id: env.ZT_DEMO_CLIENT_ID ?? 'zt-gateway-demo',
  // Read as the gateway reads ${file:…}: without the final newline.
  client_secret: readFileSync(secretFile, 'utf8').replace(/\r?\n$/, ''),
  ...originsOf(env.ZT_DEMO_GATEWAY_ORIGIN ?? 'https://localhost:8443'),
});
process.stdout.write(`demo IdP: ${idp.issuer}/\n`);

/** `a, b, c` → { origin: a, origins: [b, c] } (trailing slashes dropped). */
function originsOf(list) {
  const [origin, ...origins] = list.split(',').map((o) => o.trim().replace(/\/+$/, '')).filter((o) => o !== '');
  if (origin === undefined) throw new Error('ZT_DEMO_GATEWAY_ORIGIN names no origin');
  return { origin, origins };
}

const stop = () => idp.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
