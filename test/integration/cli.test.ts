// The CLI as an operator runs it: `node bin/zt-gateway.js validate|start|version` on the built dist/.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { freePort, sleep, waitFor } from '../helpers/wait.ts';

import { bin, ensureBuilt, root } from '../helpers/build.ts';


interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Result {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function status(url: string): Promise<number | undefined> {
  try {
    const res = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    await res.body.text();
    return res.statusCode;
  } catch {
    return undefined; // not listening yet
  }
}

const until = (what: string, check: () => Promise<boolean>, timeoutMs = 10_000) => waitFor(check, { what, timeoutMs, intervalMs: 50 });

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];

function startCli(configFile: string, env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [bin, 'start', '--config', configFile], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits for the process to exit, at most `ms`; a process that hangs fails the test instead of the suite. */
async function exitWithin(run: Running, ms: number) {
  const timeout = sleep(ms).then(() => 'timeout' as const);
  const result = await Promise.race([run.exited, timeout]);
  if (result === 'timeout') {
    run.child.kill('SIGKILL');
    throw new Error(`process did not exit within ${ms} ms\nstdout: ${run.stdout()}\nstderr: ${run.stderr()}`);
  }
  return result;
}

function config(port: number, routes: Array<{ name: string; path: string }>, upstreamUrl: string): string {
  return `listen: { address: 127.0.0.1:${port}, plaintext: true }
shutdown: { drain_timeout: 2s }
identity_headers: { assertion: false }
reload: { watch: false }
routes:
${routes
  .map((r) => `  - name: ${r.name}\n    match: { path: ${r.path} }\n    upstream: { url: "${upstreamUrl}", timeout: 5s }\n    public: true`)
  .join('\n')}
`;
}

let upstream: Upstream;

beforeAll(async () => {
  ensureBuilt();
  upstream = await startUpstream();
}, 180_000);

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await upstream?.close();
});

describe('zt-gateway validate', () => {
  it('exit 0 and "valid" for a valid file', () => {
    const file = join(tempDir(), 'ok.yaml');
    writeFileSync(file, config(8443, [{ name: 'app', path: '/' }], 'http://127.0.0.1:8080'));
    const r = cli(['validate', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${file}: valid (1 route)\n`);
    expect(r.stderr).toBe('');
    // --config is accepted too.
    expect(cli(['validate', '--config', file]).code).toBe(0);
  });

  it('exit 1 with every error, located, on an invalid file', () => {
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(
      file,
      `listen: { address: 127.0.0.1:0 }
extra: 1
routes:
  - name: a
    upstream: { url: "http://u:p@127.0.0.1:1", timeout: soon }
  - name: a
`,
    );
    const r = cli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `${file}: listen.tls: listen.tls is required (or set plaintext: true explicitly) at line 1:9`,
      `${file}: extra: unknown key at line 2:1`,
      `${file}: routes[0].upstream.url: upstream URL must not contain credentials at line 5:22`,
      `${file}: routes[0].upstream.timeout: expected a duration such as 250ms, 30s, 5m, 8h at line 5:57`,
      `${file}: routes[1].upstream: required key is missing at line 6:5`,
      `${file}: invalid (5 errors)`,
    ]);
  });

  it('exit 1 for a file that does not exist', () => {
    const file = join(tempDir(), 'absent.yaml');
    const r = cli(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}: cannot read config file (ENOENT)`);
  });

  it('warns about a shadowed route on stderr and still exits 0', () => {
    const file = join(tempDir(), 'shadow.yaml');
    writeFileSync(
      file,
      config(
        8443,
        [
          { name: 'all', path: '/' },
          { name: 'api', path: '/api' },
        ],
        'http://127.0.0.1:8080',
      ),
    );
    const r = cli(['validate', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`${file}: warning: routes[1] "api" (line 10:5) is shadowed by routes[0] "all" (line 6:5) and never matches\n`);
    expect(r.stdout).toBe(`${file}: valid (2 routes)\n`);
  });

  it('resolves ${env:…} references from the environment', () => {
    const file = join(tempDir(), 'env.yaml');
    writeFileSync(file, config(8443, [{ name: 'app', path: '/' }], 'http://${env:UP}'));
    expect(cli(['validate', file], { UP: '127.0.0.1:8080' }).code).toBe(0);
    const missing = cli(['validate', file]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('environment variable UP referenced by ${env:UP} is not set at line 8:22');
  });

  it.each([
    [[]],
    [['validate']],
    [['validate', '--bogus', 'x.yaml']],
    [['start']],
    [['start', 'file.yaml']],
    [['start', '--config']],
    [['start', '--config', 'a.yaml', '--verbose']],
    [['validate', 'a.yaml', 'b.yaml']],
    [['frobnicate']],
  ])('usage error %j → exit 2 with usage on stderr', (args) => {
    const r = cli(args);
    expect(r.code).toBe(2);
    expect(`${r.stdout}${r.stderr}`).toContain('usage:');
  });
});

/** What `npm run build` recorded in dist/build-info.json, and the package version. */
function built(): { version: string; commit: string } {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const { commit } = JSON.parse(readFileSync(join(root, 'dist', 'build-info.json'), 'utf8')) as { commit: string };
  return { version, commit };
}

describe('zt-gateway --version / version', () => {
  it('prints one line: package version, the commit of the build, the Node version', () => {
    const { version, commit } = built();
    expect(commit).toMatch(/^[0-9a-f]{40}$/); // built in a git work tree
    const line = `zt-gateway ${version} (commit ${commit.slice(0, 7)}) node ${process.version}\n`;
    for (const args of [['--version'], ['version']]) {
      const r = cli(args);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: line, stderr: '' });
    }
  });

  it('--json prints the same fields as an object, the full commit', () => {
    const r = cli(['version', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ...built(), node: process.version });
  });

  it('an unknown option is a usage error (exit 2)', () => {
    const r = cli(['version', '--short']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage:');
  });
});

describe('zt-gateway on a clean clone (no dist/)', () => {
  // The tracked files only (what `git clone` gives), node_modules linked in as `npm install` would make it.
  function cleanClone(): string {
    const ls = spawnSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' });
    expect(ls.status).toBe(0);
    const dir = tempDir('ztgw-clone-');
    for (const file of ls.stdout.split('\0').filter((f) => f && existsSync(join(root, f)))) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      cpSync(join(root, file), join(dir, file));
    }
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    return dir;
  }

  it('validate config/gateway.yaml exits 0, running the TypeScript sources', () => {
    const dir = cleanClone();
    expect(existsSync(join(dir, 'dist'))).toBe(false);
    expect(existsSync(join(dir, 'examples', 'demo', '.state'))).toBe(false);
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'zt-gateway.js'), 'validate', 'config/gateway.yaml'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^config\/gateway\.yaml: valid \(\d+ routes?\)\n$/);
    expect(r.status).toBe(0);
    // No build, no build-info.json: the commit is unknown (the runtime never asks git).
    const v = spawnSync(process.execPath, [join(dir, 'bin', 'zt-gateway.js'), '--version'], { cwd: dir, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH } });
    expect(v.stdout).toBe(`zt-gateway ${built().version} (commit unknown) node ${process.version}\n`);
    expect(v.status).toBe(0);
  });
});

describe('zt-gateway start', () => {
  it('serves a request, then exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const file = join(tempDir(), 'gateway.yaml');
    writeFileSync(file, config(port, [{ name: 'app', path: '/app' }], upstream.url));
    const run = startCli(file);
    await until('the gateway to answer', async () => (await status(`http://127.0.0.1:${port}/app/x`)) === 200);
    expect(upstream.received.at(-1)?.url).toBe('/app/x');
    expect(await status(`http://127.0.0.1:${port}/nope`)).toBe(404);

    run.child.kill('SIGTERM');
    const { code, signal } = await exitWithin(run, 10_000);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(run.stderr()).toBe('');
    // Structured logs: the start and the shutdown are both there once the process has flushed.
    const logs = run
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.filter((l) => l.msg === 'zt-gateway started')).toEqual([expect.objectContaining({ ...built(), node: process.version })]);
    expect(logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM')).toBe(true);
    expect(logs.some((l) => l.msg === 'zt-gateway stopped')).toBe(true);
  });

  it('SIGHUP reloads the config file', async () => {
    const port = await freePort();
    const file = join(tempDir(), 'gateway.yaml');
    writeFileSync(file, config(port, [{ name: 'one', path: '/one' }], upstream.url));
    const run = startCli(file);
    await until('the gateway to answer', async () => (await status(`http://127.0.0.1:${port}/one`)) === 200);
    expect(await status(`http://127.0.0.1:${port}/two`)).toBe(404);

    writeFileSync(file, config(port, [{ name: 'two', path: '/two' }], upstream.url));
    run.child.kill('SIGHUP');
    await until('the new route to answer', async () => (await status(`http://127.0.0.1:${port}/two`)) === 200);
    expect(await status(`http://127.0.0.1:${port}/one`)).toBe(404);

    // An invalid file on SIGHUP keeps the running config and the process alive.
    writeFileSync(file, 'listen: {\n');
    run.child.kill('SIGHUP');
    // Not a pause: the reload attempt is over once the process has said so.
    await until('the failed reload to be reported', async () => run.stdout().includes('config reload failed; keeping the running config'));
    expect(run.child.exitCode).toBeNull();
    expect(await status(`http://127.0.0.1:${port}/two`)).toBe(200);

    run.child.kill('SIGTERM');
    expect((await exitWithin(run, 10_000)).code).toBe(0);
    expect(run.stdout()).toContain('config reload failed; keeping the running config');
  });

  it('an invalid config exits 1 with the located error on stderr', async () => {
    const file = join(tempDir(), 'gateway.yaml');
    writeFileSync(
      file,
      `listen: { address: 127.0.0.1:0, plaintext: true }
routes:
  - name: app
    upstream: { url: "ftp://127.0.0.1:21" }
`,
    );
    const run = startCli(file);
    const { code } = await exitWithin(run, 10_000);
    expect(code).toBe(1);
    expect(run.stderr()).toBe(`${file}: routes[0].upstream.url: upstream URL must be http:// or https:// at line 4:22\n`);
  });

  it('a config file that does not exist exits 1', async () => {
    const file = join(tempDir(), 'absent.yaml');
    const run = startCli(file);
    expect((await exitWithin(run, 10_000)).code).toBe(1);
    expect(run.stderr()).toBe(`${file}: cannot read config file (ENOENT)\n`);
  });
});
