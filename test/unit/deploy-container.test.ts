// The container files, checked statically: there is no Docker engine where these tests run, so `docker build`
// and `docker compose up` are not exercised here. What is checked: the Dockerfile's stages and hardening, the
// build context allowlist, and that deploy/compose/docker-compose.yml is coherent and its mounts give the
// gateway config exactly the files it names (the config then loads with the gateway's own loader).
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse, parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { postureFindings } from '../../src/cli/posture/checks.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { root } from '../helpers/build.ts';
import { tempDir } from '../helpers/gateway.ts';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  steps: Instruction[];
}

/** Dockerfile → global ARGs and stages (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\S+)\s*(.*)$/.exec(line) as RegExpExecArray;
    const op = (m[1] as string).toUpperCase();
    const rest = (m[2] as string).replace(/\s+/g, ' ');
    if (op === 'FROM') {
      const f = /^(\S+)(?: AS (\S+))?$/i.exec(rest) as RegExpExecArray;
      stages.push({ from: f[1] as string, name: f[2], steps: [] });
    } else if (stages.length === 0 && op === 'ARG') {
      const [k, v] = rest.split('=');
      args.set(k as string, v ?? '');
    } else stages.at(-1)?.steps.push({ op, args: rest });
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const image = (s: Stage) => s.from.replace(/^\$\{(\w+)\}$/, (_, k: string) => dockerfile.args.get(k) ?? '');
const runtime = dockerfile.stages.at(-1) as Stage;
const steps = (s: Stage, op: string) => s.steps.filter((i) => i.op === op).map((i) => i.args);

describe('Dockerfile', () => {
  it('is multi-stage on node 24 slim, and the last stage (the default target) is the runtime', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', 'demo', 'runtime']);
    expect(dockerfile.args.get('NODE_IMAGE')).toBe('node:24-slim');
    for (const s of dockerfile.stages) expect(['node:24-slim', 'build']).toContain(image(s));
    expect(image(runtime)).toBe('node:24-slim');
  });

  it('builds with the dev toolchain and ships production dependencies, dist/ and the vendored protos only', () => {
    const build = dockerfile.stages[0] as Stage;
    expect(steps(build, 'RUN')).toEqual(['npm ci --no-audit --no-fund', 'npm run build']);
    const run = steps(runtime, 'RUN');
    expect(run).toHaveLength(1);
    expect(run[0]).toMatch(/^npm ci --omit=dev\b/);
    expect(dockerfile.stages.flatMap((s) => steps(s, 'RUN')).join('\n')).not.toMatch(/npm (i|install)\b/);
    expect(steps(runtime, 'COPY')).toEqual([
      'package.json package-lock.json ./',
      '--from=build /build/dist ./dist',
      'bin ./bin',
      'config/schema.json ./config/schema.json',
      'proto ./proto', // Envoy's ext_authz protos, read at run time when `ext_authz` is configured
    ]);
    expect(dockerfile.stages.flatMap((s) => s.steps).filter((i) => i.op === 'ADD')).toEqual([]);
    expect(steps(runtime, 'ENV').join(' ')).toContain('NODE_ENV=production');
  });

  it('runs as a numeric non-root user, read-only friendly (no VOLUME), node as PID 1 on /etc/zt-gateway', () => {
    const users = steps(runtime, 'USER');
    expect(users).toEqual(['1000:1000']);
    // USER comes after every RUN/COPY: the files the image ships stay root-owned and read-only for the gateway.
    const ops = runtime.steps.map((i) => i.op);
    expect(ops.lastIndexOf('RUN')).toBeLessThan(ops.indexOf('USER'));
    expect(ops.lastIndexOf('COPY')).toBeLessThan(ops.indexOf('USER'));
    expect(steps(runtime, 'VOLUME')).toEqual([]);
    expect(steps(runtime, 'ENTRYPOINT')).toEqual(['["node", "/app/bin/zt-gateway.js"]']);
    expect(steps(runtime, 'CMD')).toEqual(['["start", "--config", "/etc/zt-gateway/gateway.yaml"]']);
    expect(steps(runtime, 'EXPOSE')).toEqual(['8443 9090']);
    expect(steps(dockerfile.stages[1] as Stage, 'USER')).toEqual(['1000:1000']);
  });

  it('checks its health on the admin /healthz', () => {
    const [health] = steps(runtime, 'HEALTHCHECK');
    expect(health).toMatch(/^--interval=\S+ --timeout=\S+ .*CMD \["node", "-e", "fetch\(process\.env\.ZT_HEALTHCHECK_URL/);
    expect(steps(runtime, 'ENV').join(' ')).toContain('ZT_HEALTHCHECK_URL=http://127.0.0.1:9090/healthz');
  });

  it('documents --read-only --tmpfs /tmp', () => {
    expect(readFileSync(join(root, 'Dockerfile'), 'utf8')).toMatch(/docker run --rm --read-only --tmpfs \/tmp/);
  });

  it('.dockerignore is an allowlist that keeps .git, node_modules, demo state and stray keys out', () => {
    const lines = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    expect(lines.filter((l) => l.startsWith('!'))).toEqual(['!package.json', '!package-lock.json', '!tsconfig.json', '!src', '!scripts/build-info.ts', '!bin', '!config/schema.json', '!examples/demo']);
    expect(lines).toContain('examples/demo/.state');
  });
});

describe('deploy/compose/docker-compose.yml', () => {
  const file = join(root, 'deploy', 'compose', 'docker-compose.yml');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const compose = doc.toJS() as { services: Record<string, Record<string, any>>; networks: Record<string, unknown> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  const s = compose.services;

  it('parses, with the gateway, the demo app, the demo IdP and Redis', () => {
    expect(doc.errors).toEqual([]);
    expect(Object.keys(s).sort()).toEqual(['app', 'gateway', 'idp', 'redis']);
    expect(s.gateway?.build).toEqual({ context: '../..', dockerfile: 'Dockerfile', target: 'runtime' });
    expect(s.app?.build).toEqual({ context: '../..', dockerfile: 'Dockerfile', target: 'demo' });
    expect(s.idp?.image).toBe(s.app?.image);
    expect(s.redis?.image).toMatch(/^redis:\d/);
  });

  it('every container is read-only, without capabilities or new privileges, and writes only to a tmpfs', () => {
    for (const [name, svc] of Object.entries(s)) {
      expect(svc.read_only, name).toBe(true);
      expect(svc.cap_drop, name).toEqual(['ALL']);
      expect(svc.security_opt, name).toEqual(['no-new-privileges:true']);
      expect(svc.tmpfs, name).toHaveLength(1);
      expect(svc.privileged, name).toBeUndefined();
    }
    expect(s.redis?.user).toBe('redis');
  });

  it('shares one network namespace like a pod: the app on loopback only, ports published on 127.0.0.1 only', () => {
    expect(s.gateway?.network_mode).toBe('service:app');
    expect(s.idp?.network_mode).toBe('service:app');
    expect(s.app?.command).toEqual(['node', 'examples/demo/app.js', '--host', '127.0.0.1', '--port', '8080']);
    expect(s.app?.ports).toEqual(['127.0.0.1:8443:8443', '127.0.0.1:9000:9000']);
    expect(s.redis?.ports).toBeUndefined();
    expect(s.gateway?.depends_on).toEqual({ idp: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    for (const name of ['idp', 'redis']) expect(s[name]?.healthcheck?.test?.[0]).toBe('CMD');
    expect(s.idp?.environment).toMatchObject({ ZT_DEMO_IDP_ISSUER: 'http://127.0.0.1:9000', ZT_DEMO_GATEWAY_ORIGIN: 'https://localhost:8443' });
    expect(existsSync(join(root, 'examples', 'demo', 'idp-server.js'))).toBe(true);
  });

  it("the gateway's mounts give its config every file it names: it loads, and the IdP client matches", async () => {
    const mount = tempDir('ztgw-compose-');
    try {
      for (const volume of s.gateway?.volumes as string[]) {
        const [host, target, mode] = volume.split(':') as [string, string, string];
        expect(mode).toBe('ro');
        expect(target.startsWith('/etc/zt-gateway/')).toBe(true);
        const source = resolve(dirname(file), host);
        expect(existsSync(source), host).toBe(true);
        const dest = join(mount, target.slice('/etc/zt-gateway/'.length));
        mkdirSync(dirname(dest), { recursive: true });
        copyFileSync(source, dest);
      }
      const loaded = loadConfigFile(join(mount, 'gateway.yaml'), {});
      const compiled = await compileConfig(loaded);
      expect(compiled.routes.map((r) => r.name)).toEqual(['static', 'admin', 'app']);
      const provider = loaded.config.identity_providers['demo-idp'];
      expect(provider).toMatchObject({ type: 'oidc', issuer: s.idp?.environment.ZT_DEMO_IDP_ISSUER, client_id: s.idp?.environment.ZT_DEMO_CLIENT_ID });
      expect(loaded.config.state?.redis).toBe('redis://redis:6379/0');
      expect(loaded.config.admin?.listen).toBe('127.0.0.1:9090'); // the image's HEALTHCHECK default
      expect(postureFindings(loaded).filter((f) => f.severity === 'high')).toEqual([]);
      const yaml = parse(readFileSync(join(mount, 'gateway.yaml'), 'utf8')) as { listen: { address: string } };
      expect(s.app?.ports).toContain(`127.0.0.1:${yaml.listen.address.split(':')[1]}:${yaml.listen.address.split(':')[1]}`);
    } finally {
      rmSync(mount, { recursive: true, force: true });
    }
  });
});

it('the README says the image build is not exercised in CI here', () => {
  expect(readFileSync(join(root, 'README.md'), 'utf8')).toMatch(/image build(s)? (is|are) not exercised in (this repository's )?CI/);
});
