#!/usr/bin/env node
// Profiles the full-pipeline scenario: `node bench/profile.js` → top self-time frames of the gateway.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

const has = (cmd, args) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const hasTaskset = has('taskset', ['-p', String(process.pid)]);
const hasWrk = has('sh', ['-c', 'command -v wrk']);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'ztgw-prof-'));
const start = (args, env = {}) =>
  new Promise((resolve) => {
    const c = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout.on('data', (d) => {
      const m = /"ready":(\d+)/.exec(String(d));
      if (m) resolve({ c, port: Number(m[1]) });
    });
  });
const freePort = () => new Promise((r) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });

const { publicKey, privateKey } = await generateKeyPair('ES256');
const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256', use: 'sig' };
// UPSTREAM=http://127.0.0.1:port profiles against a faster upstream (e.g. nginx) than the node one started here.
const up = process.env.UPSTREAM ? { port: Number(new URL(process.env.UPSTREAM).port), c: { kill() {} } } : await start(['bench/servers/upstream.js']);
const jw = await start(['bench/servers/jwks.js'], { JWKS_JSON: JSON.stringify({ keys: [jwk] }) });
const issuer = `http://127.0.0.1:${jw.port}`;
const token = await new SignJWT({ groups: ['sales'] }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(issuer).setAudience('gw').setSubject('alice').setIssuedAt().setExpirationTime('1h').sign(privateKey);
const port = await freePort();
const cfg = join(work, 'gw.yaml');
writeFileSync(cfg, `listen: { address: 127.0.0.1:${port}, plaintext: true }
log: { level: warn, access: false, audit: ${join(work, 'audit.log')} }
reload: { watch: false }
identity_providers:
  bench: { type: jwt, issuer: ${issuer}, audiences: [gw], algorithms: [ES256], jwks_uri: ${issuer}/jwks.json }
routes:
  - name: api
    match: { path: / }
    upstream: { url: http://127.0.0.1:${up.port}, connections: 128 }
    authenticate: [bench]
    rate_limit: { per: subject, limit: 10000000, window: 1m }
    authorize:
      allow:
        - { groups: admins }
        - { email_domain: partner.example }
        - { subject: svc-reporting }
        - { groups: support, mfa: true }
        - { groups: sales }
`);
// ROUTE=public profiles a public route instead of the full pipeline; wrk (when installed) loads it.
if (process.env.ROUTE === 'public') {
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/routes:[\s\S]*$/, `routes:\n  - { name: app, match: { path: / }, upstream: { url: "http://127.0.0.1:${up.port}", connections: 128 }, public: true }\n`));
}
const pin = (cpu, cmd, args) => (hasTaskset ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);
const gw = spawn(...pin(0, process.execPath, ['--cpu-prof', `--cpu-prof-dir=${work}`, 'bin/zt-gateway.js', 'start', '--config', cfg]), { cwd: ROOT, stdio: 'inherit' });
await new Promise((r) => setTimeout(r, 1500));
const seconds = Number(process.env.SECONDS ?? 8);
if (hasWrk) {
  const w = spawnSync(...pin(1, 'wrk', ['-t1', '-c50', `-d${seconds}s`, '--latency', '-H', `authorization: Bearer ${token}`, `http://127.0.0.1:${port}/`]), { encoding: 'utf8' });
  console.log(w.stdout.split('\n').filter((l) => /Requests\/sec|50%|99%|Non-2xx/.test(l)).join('\n'));
} else {
  const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, duration: seconds, headers: { authorization: `Bearer ${token}` } });
  console.log(`req/s ${Math.round(result.requests.average)} non2xx ${result.non2xx}`);
}
gw.kill('SIGTERM');
await once(gw, 'exit');
up.c.kill();
jw.c.kill();
const file = readdirSync(work).find((f) => f.endsWith('.cpuprofile'));
const prof = JSON.parse(readFileSync(join(work, file), 'utf8'));
const self = new Map();
const total = prof.samples.length;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const counts = new Map();
for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
for (const [id, n] of counts) {
  const node = byId.get(id);
  const f = node.callFrame;
  const key = `${f.functionName || '(anon)'} ${f.url.replace(/^.*node_modules\//, '').replace(`file://${ROOT}/`, '')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + n);
}
const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30));
for (const [k, n] of top) console.log(`${((n / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
console.log(`profile: ${join(work, file)}`);
