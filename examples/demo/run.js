#!/usr/bin/env node
// `npm run demo`: zt-gateway in front of an unmodified legacy app, on this machine only.
//
//  1. first run: a dev CA and a localhost certificate in examples/demo/.state/ (the CA key is never stored)
//  2. the legacy app (examples/demo/app.js) on a free 127.0.0.1 port
//  3. the demo OpenID provider (examples/demo/idp.js, in this process) on 127.0.0.1 (9000 when free), with the
//     gateway registered as its client (the client_id and client_secret of config/gateway.yaml)
//  4. `zt-gateway start` with config/gateway.yaml, rewritten into .state/gateway.yaml with the ports chosen here
//     (8443, 9090 and the IdP's when free), the .state certificate, and absolute paths; line numbers stay the same
//  5. prints `zt-gateway demo: https://localhost:PORT/` once the gateway is listening, and the demo account
//
// Editing config/gateway.yaml while the demo runs rewrites .state/gateway.yaml, which the gateway hot-reloads
// (an invalid edit is reported here and the running config stays). Ctrl-C or SIGTERM stops every process
// started here. ZT_DEMO_STATE_DIR puts the state somewhere else (the tests use a temporary directory);
// ZT_DEMO_ANY_PORT=1 takes free ports the OS picks instead of 8443/9090/9000 (so that two demos can start at
// the same moment, as the tests do, without both choosing a port that is still free). ZT_DEMO_APP_ORIGINS
// (comma-separated https://host[:port]) registers more callbacks at the demo IdP: app hosts behind a
// forward-auth proxy (deploy/forward-auth/), each of which gets its own https://host[:port]/.zt/callback.
import { fork, spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, watch, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect, createServer } from 'node:net';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const SOURCE = join(root, 'config', 'gateway.yaml');
const BIN = join(root, 'bin', 'zt-gateway.js');
const stateDir = resolve(process.env.ZT_DEMO_STATE_DIR ?? join(here, '.state'));
const anyPort = process.env.ZT_DEMO_ANY_PORT === '1';
const derivedConfig = join(stateDir, 'gateway.yaml');
/** The origin config/gateway.yaml gives the demo app; routes with this upstream are sent to the real port. */
const APP_PLACEHOLDERS = new Set(['http://127.0.0.1:8080', 'http://localhost:8080']);
/** The issuer config/gateway.yaml gives the demo IdP; oidc providers with this issuer use the one started here. */
const IDP_PLACEHOLDERS = new Set(['http://localhost:9000', 'http://127.0.0.1:9000']);
/** Config keys that hold file paths (relative to the config file, so they must become absolute in .state). */
const PATH_KEYS = new Set(['cert', 'key', 'client_ca', 'crl', 'ca', 'keys_file', 'assertion_key', 'inventory', 'audit', 'geoip_db']);
/** Maps whose keys are names chosen by the operator (claim paths, CSP directives), not config keys. */
const FREE_FORM = new Set(['claims', 'directives']);
const DEMO_API_KEY = 'ztk_DEMO-ONLY-not-a-secret'; // its hash is in examples/demo/DEMO-ONLY-api-keys.yaml

const show = (p) => {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
};
const say = (line) => process.stderr.write(`${line}\n`);

/** @type {import('node:child_process').ChildProcess[]} */
const children = [];
/** The demo IdP, when config/gateway.yaml uses it. */
let idp;
let stopping;

process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

try {
  await main();
} catch (err) {
  say(`zt-gateway demo: ${err instanceof Error ? err.message : String(err)}`);
  await stop(1);
}

async function main() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) throw new Error(`Node ${process.versions.node}: zt-gateway needs Node 24 or newer (\`source .ci/env\` puts it on PATH)`);
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run demo` (it builds first)');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tls = await certificates();

  const sourceText = readFileSync(SOURCE, 'utf8');
  const wanted = preferredPorts(sourceText);
  const app = await startApp();
  const ports = {
    app: app.port,
    listen: await pickPort(wanted.listen),
    admin: wanted.admin ? await pickPort(wanted.admin) : undefined,
    redirect: wanted.redirect ? await pickPort(wanted.redirect) : undefined,
    idp: wanted.idp ? await pickPort(wanted.idp) : undefined,
  };
  const scheme = wanted.tls ? 'https' : 'http';
  const origin = `${scheme}://localhost:${ports.listen}`;
  const options = { ...ports, tls, origin };
  const accounts = ports.idp === undefined ? undefined : await startIdp(ports.idp, tls);
  if (accounts) options.idp = ports.idp = accounts.port;
  const derived = derive(sourceText, options);
  writeAtomic(derivedConfig, derived.text);
  await registerClients(derived.clients, origin);

  await startGateway(ports, wanted);
  watchSource(options);

  const url = `${origin}/`;
  process.stdout.write(`zt-gateway demo: ${url}\n`);
  const curl = `curl --cacert ${show(tls.ca)}`;
  if (accounts) {
    for (const [login, a] of Object.entries(accounts.list)) {
      say(`  log in:      ${login} / ${a.password}  (${a.email}, groups: ${a.groups.join(', ')}) at the demo IdP`);
    }
    say(`               add the one-time code ${accounts.otp} for a multi-factor login (acr mfa); ${url}admin/ asks for it`);
    say(`  demo IdP:    ${idp.issuer}/ (oidc-provider in this process, loopback only); ${url}.zt/logout has the log-out button`);
  }
  say(`  legacy app:  http://127.0.0.1:${ports.app}/ (loopback only; browse it through the gateway)`);
  if (ports.admin) say(`  admin:       http://127.0.0.1:${ports.admin}/healthz and /readyz`);
  say(`  browser:     trust ${show(tls.ca)} (a CA made for this machine) or accept the warning`);
  if (accounts) say(`  try:         ${curl} -H 'Accept: text/html' ${url}    # 302 to the IdP: open it in a browser and log in`);
  else say(`  try:         ${curl} ${url}`);
  say(`               ${curl} ${url}api/    # 401: no credentials`);
  say(`               ${curl} ${url}api/ -H 'Authorization: ApiKey ${DEMO_API_KEY}'`);
  say(`               ${curl} '${url}..%2f'    # 400: refused, never forwarded`);
  say(`  logs:        ${[`gateway.log`, 'app.log', ...(idp ? ['idp.log'] : [])].map((f) => show(join(stateDir, f))).join(', ')}`);
  say(`  edit ${show(SOURCE)} to hot-reload it; Ctrl-C stops the demo`);
}

// ---- certificates ------------------------------------------------------------------------------------------

async function certificates() {
  const files = { ca: join(stateDir, 'ca.crt'), cert: join(stateDir, 'localhost.crt'), key: join(stateDir, 'localhost.key') };
  if (usable(files)) return files;
  const { createCA } = await import('../../tools/pki.ts');
  const ca = await createCA('zt-gateway demo CA (this machine only)');
  const leaf = await ca.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1', '::1'], days: 397 });
  // Only the CA certificate is kept: no key on disk means nothing else can ever be signed by a CA you trusted.
  writeAtomic(files.key, leaf.key, 0o600);
  writeAtomic(files.cert, leaf.cert);
  writeAtomic(files.ca, ca.cert);
  say(`zt-gateway demo: created a dev CA and a localhost certificate in ${show(stateDir)}`);
  return files;
}

/** The stored certificate is for localhost, was issued by the stored CA, matches its key and is valid a day more. */
function usable(files) {
  try {
    const ca = new X509Certificate(readFileSync(files.ca));
    const leaf = new X509Certificate(readFileSync(files.cert));
    const key = createPrivateKey(readFileSync(files.key));
    return (
      leaf.checkIssued(ca) &&
      leaf.verify(ca.publicKey) &&
      leaf.checkPrivateKey(key) &&
      leaf.checkHost('localhost') !== undefined &&
      Date.parse(leaf.validTo) - Date.now() > 86_400_000
    );
  } catch {
    return false;
  }
}

// ---- ports -------------------------------------------------------------------------------------------------

function splitAddress(address) {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

function bindHost(host) {
  if (host === '*') return '0.0.0.0';
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/** The addresses config/gateway.yaml asks for; their ports are used when free. */
function preferredPorts(text) {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(`${show(SOURCE)} does not parse: run \`node bin/zt-gateway.js validate ${show(SOURCE)}\``);
  const get = (path) => {
    const v = doc.getIn(path);
    return typeof v === 'string' && /:\d+$/.test(v) ? splitAddress(v) : undefined;
  };
  const listen = get(['listen', 'address']);
  if (!listen) throw new Error(`${show(SOURCE)}: listen.address is missing`);
  // The demo IdP runs when an oidc provider names it; on 127.0.0.1 and the placeholder's port when free.
  const placeholder = demoProviders(doc)[0]?.issuer;
  return {
    listen,
    admin: get(['admin', 'listen']),
    redirect: get(['listen', 'redirect_http']),
    idp: placeholder ? { host: '127.0.0.1', port: Number(new URL(placeholder).port) } : undefined,
    tls: doc.getIn(['listen', 'tls']) !== undefined,
  };
}

/** The oidc providers of a parsed config whose issuer is the demo IdP's placeholder: { name, issuer, node }. */
function demoProviders(doc) {
  const providers = doc.get('identity_providers', true);
  if (!isMap(providers)) return [];
  const out = [];
  for (const pair of providers.items) {
    if (!isMap(pair.value) || pair.value.get('type') !== 'oidc') continue;
    const node = pair.value.get('issuer', true);
    if (isScalar(node) && typeof node.value === 'string' && IDP_PLACEHOLDERS.has(originOf(node.value))) {
      out.push({ name: String(isScalar(pair.key) ? pair.key.value : pair.key), issuer: node.value, node, provider: pair.value });
    }
  }
  return out;
}

function canListen(host, port) {
  return new Promise((done) => {
    const srv = createServer();
    srv.once('error', () => done(false));
    srv.listen({ host: bindHost(host), port, exclusive: true }, () => srv.close(() => done(true)));
  });
}

/** The configured port when it is free, else one the OS picks. */
async function pickPort({ host, port }) {
  if (port > 0 && !anyPort && (await canListen(host, port))) return port;
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen({ host: bindHost(host), port: 0, exclusive: true }, () => {
      const picked = srv.address().port;
      srv.close(() => done(picked));
    });
  });
}

// ---- config ------------------------------------------------------------------------------------------------

/**
 * config/gateway.yaml with this run's ports, certificate and absolute paths. Only scalar values are replaced,
 * each by a one-line quoted string, so an error the gateway reports has the line number of the source file.
 * A file that does not parse is copied as it is: the gateway reports the error and keeps its running config.
 */
function derive(text, o) {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return { text, ok: false, clients: [] };
  const edits = new Map(); // node → replacement value
  const scalar = (path) => {
    const node = doc.getIn(path, true);
    return isScalar(node) && typeof node.value === 'string' && node.range ? node : undefined;
  };
  const port = (path, value) => {
    const node = scalar(path);
    if (node && value !== undefined) edits.set(node, `${splitAddress(node.value).host}:${value}`);
  };
  port(['listen', 'address'], o.listen);
  port(['admin', 'listen'], o.admin);
  port(['listen', 'redirect_http'], o.redirect);
  const cert = scalar(['listen', 'tls', 'cert']);
  const key = scalar(['listen', 'tls', 'key']);
  if (cert && key) {
    edits.set(cert, o.tls.cert);
    edits.set(key, o.tls.key);
  }
  // The demo IdP's issuer, and the clients to register there (with their secrets, read as the gateway will).
  const clients = [];
  if (o.idp !== undefined) {
    for (const p of demoProviders(doc)) {
      edits.set(p.node, `http://127.0.0.1:${o.idp}`);
      const clientId = p.provider.get('client_id');
      const secret = resolveSecret(p.provider.get('client_secret'));
      if (typeof clientId === 'string' && secret !== undefined) clients.push({ client_id: clientId, client_secret: secret });
      else say(`zt-gateway demo: identity_providers.${p.name} needs a client_id and a client_secret for the demo IdP`);
    }
  }
  const routes = doc.get('routes', true);
  if (isSeq(routes)) {
    routes.items.forEach((_, i) => {
      const url = scalar(['routes', i, 'upstream', 'url']);
      if (url && APP_PLACEHOLDERS.has(originOf(url.value))) edits.set(url, `http://127.0.0.1:${o.app}`);
    });
  }
  const base = dirname(SOURCE);
  (function walk(node) {
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? pair.key.value : undefined;
        const v = pair.value;
        if (isScalar(v) && typeof v.value === 'string' && v.range && !edits.has(v)) {
          let value = v.value.replace(/\$\{file:([^}]*)\}/g, (whole, p) => (p && !isAbsolute(p) ? `\${file:${resolve(base, p)}}` : whole));
          if (PATH_KEYS.has(k) && value !== 'stdout' && !value.includes('${') && !isAbsolute(value)) value = resolve(base, value);
          if (value !== v.value) edits.set(v, value);
        } else if (!FREE_FORM.has(k)) walk(v);
      }
    } else if (isSeq(node)) for (const item of node.items) walk(item);
  })(doc.contents);

  let out = text;
  for (const [node, value] of [...edits].sort((a, b) => b[0].range[0] - a[0].range[0])) {
    out = out.slice(0, node.range[0]) + JSON.stringify(value) + out.slice(node.range[1]);
  }
  // At the end, so that every line keeps its number.
  out = `${out.replace(/\n*$/, '\n')}# generated by examples/demo/run.js from config/gateway.yaml: edit that file, not this one\n`;
  return { text: out, ok: true, clients };
}

/** A secret as the gateway reads it: `${file:…}` (relative to config/, one trailing newline removed), `${env:…}`, or literal. */
function resolveSecret(value) {
  if (typeof value !== 'string') return undefined;
  const m = /^\$\{(file|env):([^}]+)\}$/.exec(value);
  if (!m) return value;
  if (m[1] === 'env') return process.env[m[2]];
  try {
    return readFileSync(resolve(dirname(SOURCE), m[2]), 'utf8').replace(/\r?\n$/, '');
  } catch {
    return undefined;
  }
}

// ---- the demo IdP ------------------------------------------------------------------------------------------

async function startIdp(port, tls) {
  const { startDemoIdp, DEMO_ACCOUNTS, DEMO_OTP } = await import('./idp.js');
  const log = createWriteStream(join(stateDir, 'idp.log'), { flags: 'w' });
  const start = (p) =>
    startDemoIdp({
      host: '127.0.0.1',
      port: p,
      issuer: p === 0 ? undefined : `http://127.0.0.1:${p}`, // not localhost: cookies ignore ports, and the IdP's must not reach the app
      gatewayCa: readFileSync(tls.ca, 'utf8'),
      log: (line) => log.write(`${new Date().toISOString()} ${line}\n`),
    });
  try {
    idp = await start(port);
  } catch (err) {
    if (err?.code !== 'EADDRINUSE') throw err;
    idp = await start(0); // taken since pickPort looked: any free port (the issuer follows it)
  }
  return { list: DEMO_ACCOUNTS, otp: DEMO_OTP, port: idp.port };
}

/**
 * Registers the gateway's oidc clients at the demo IdP (again after an edit of config/gateway.yaml), with the
 * callbacks of the app hosts in ZT_DEMO_APP_ORIGINS too (comma-separated https://host[:port], e.g. an nginx
 * or Caddy forward-auth proxy in front of another app).
 */
async function registerClients(clients, origin) {
  if (!idp) return;
  const origins = (process.env.ZT_DEMO_APP_ORIGINS ?? '').split(',').map((o) => o.trim().replace(/\/+$/, '')).filter((o) => o !== '');
  for (const c of clients) await idp.register({ ...c, origin, origins });
}

function originOf(url) {
  try {
    return new URL(url).origin;
  } catch {
    return '';
  }
}

function writeAtomic(file, text, mode = 0o644) {
  const tmp = join(dirname(file), `.${process.pid}.tmp`);
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

/** Re-derives .state/gateway.yaml when config/gateway.yaml changes; the gateway's own watcher reloads it. */
function watchSource(options) {
  let last = readFileSync(SOURCE, 'utf8');
  let timer;
  try {
    const watcher = watch(dirname(SOURCE), { persistent: false }, (_event, file) => {
      if (file !== null && file !== 'gateway.yaml') return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        let text;
        try {
          text = readFileSync(SOURCE, 'utf8');
        } catch {
          return; // mid-replace: the next event has the new file
        }
        if (text === last) return;
        last = text;
        const derived = derive(text, options);
        registerClients(derived.clients, options.origin)
          .catch((err) => say(`zt-gateway demo: could not register the client at the demo IdP: ${err.message}`))
          .finally(() => writeAtomic(derivedConfig, derived.text));
      }, 100);
    });
    watcher.on('error', () => undefined);
  } catch {
    say(`zt-gateway demo: cannot watch ${show(SOURCE)}; restart the demo after editing it`);
  }
}

// ---- processes ---------------------------------------------------------------------------------------------

function track(child, name) {
  children.push(child);
  child.once('exit', (code, signal) => {
    if (stopping) return;
    say(`zt-gateway demo: ${name} exited (${signal ?? `code ${code}`}); stopping`);
    stop(1);
  });
  return child;
}

async function startApp() {
  const log = createWriteStream(join(stateDir, 'app.log'), { flags: 'w' });
  const app = track(fork(join(here, 'app.js'), ['--port', '0'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }), 'the demo app');
  app.stdout.pipe(log);
  app.stderr.pipe(log);
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error('the demo app did not start within 10 s')), 10_000);
    app.once('exit', () => fail(new Error(`the demo app did not start; see ${show(join(stateDir, 'app.log'))}`)));
    app.on('message', (m) => {
      if (m?.type !== 'listening') return;
      clearTimeout(timer);
      done({ port: m.port });
    });
  });
}

async function startGateway(ports, wanted) {
  const log = createWriteStream(join(stateDir, 'gateway.log'), { flags: 'w' });
  const gw = track(
    spawn(process.execPath, ['--import', pathToFileURL(join(here, 'exit-with-parent.js')).href, BIN, 'start', '--config', derivedConfig], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    }),
    'the gateway',
  );
  for (const stream of [gw.stdout, gw.stderr]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      log.write(`${line}\n`);
      surface(line);
    });
  }
  // Ready when the admin listener says so (it starts after the main one), else when the main port accepts.
  // Polled rather than read from the log, which a `log.level: warn` in the config would silence.
  const ready = wanted.admin
    ? () => readyz(probeHost(wanted.admin.host), ports.admin)
    : () => accepts(probeHost(wanted.listen.host), ports.listen);
  let exited = false;
  gw.once('exit', () => (exited = true));
  const deadline = Date.now() + 30_000;
  while (!(await ready())) {
    if (exited) throw new Error(`the gateway did not start; see ${show(join(stateDir, 'gateway.log'))}`);
    if (Date.now() > deadline) throw new Error('the gateway did not start within 30 s');
    await sleep(100);
  }
}

/** Where to connect to reach a listener bound to `host` (a wildcard address is reached on loopback). */
function probeHost(host) {
  const h = bindHost(host);
  return h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h;
}

function readyz(host, port) {
  return new Promise((done) => {
    const req = httpGet({ host, port, path: '/readyz', timeout: 1000 }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.on('error', () => done(false));
    req.on('timeout', () => req.destroy());
  });
}

function accepts(host, port) {
  return new Promise((done) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Gateway output worth a human's attention: config errors, warnings, reloads. Access records stay in the log. */
function surface(line) {
  const fromSource = (s) => String(s).replaceAll(derivedConfig, show(SOURCE));
  let record;
  try {
    record = JSON.parse(line);
  } catch {
    say(`gateway: ${fromSource(line)}`); // the CLI's own messages, e.g. config errors at start
    return;
  }
  if (record === null || typeof record !== 'object') return;
  if (['warn', 'error', 'fatal'].includes(record.level)) {
    const code = record.code ? ` (${record.code})` : '';
    say(`gateway ${record.level}: ${fromSource(record.msg)}${code}`);
    for (const p of Array.isArray(record.problems) ? record.problems : []) say(`  ${fromSource(p)}`);
  } else if (record.msg === 'config reloaded') {
    say(`gateway: ${show(SOURCE)} reloaded (generation ${record.generation})`);
  }
}

/** Stops the gateway (it drains), then the app. A second Ctrl-C kills whatever is left at once. */
function stop(code) {
  if (stopping) {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    return stopping;
  }
  stopping = (async () => {
    for (const child of [...children].reverse()) await terminate(child, 10_000);
    await idp?.close();
    process.exit(code);
  })();
  return stopping;
}

function terminate(child, graceMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}
