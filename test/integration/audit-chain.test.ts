// Tamper-evident audit (log.audit_chain): records written by the real gateway through the async pino file
// destination carry seq and prev (SHA-256 of the previous line); the chain holds under concurrent requests,
// across a reload and a restart; `zt-gateway audit verify` (the built binary) passes a clean file and names
// the first bad line of an edited, removed, reordered or truncated one.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS, verifyChain } from '../../src/audit/chain.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { ensureBuilt } from '../helpers/build.ts';
import { cli } from '../helpers/cli.ts';
import { startGateway, tempDir } from '../helpers/gateway.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const yaml = (up: string, extra = '') => `listen: { address: 127.0.0.1:0, plaintext: true }
shutdown: { drain_timeout: 1s }
log: { access: false, audit: audit.log, audit_chain: true }
${extra}
routes:
  - name: app
    match: { path: / }
    upstream: { url: ${up} }
    public: true
`;


const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let upstream: Upstream;
let dir: string;
let file: string;
let clean: string[];

beforeAll(async () => {
  ensureBuilt();
  upstream = await startUpstream();
  dir = tempDir('ztgw-chain-');
  file = join(dir, 'audit.log');
  const gw = await startGateway(yaml(upstream.url), { dir });
  // Concurrent requests: records reach the async destination in completion order, chained in that order.
  await Promise.all(Array.from({ length: 40 }, (_, i) => request(`${gw.url}/page/${i}`).then((r) => r.body.text())));
  await waitFor(() => lines(file).length === 40, { timeoutMs: 5000 });
  // A reload keeps the same destination and the same chain.
  writeFileSync(gw.configFile, yaml(upstream.url, '# reloaded'));
  expect(await gw.gateway.reload()).toBe(true);
  for (let i = 0; i < 5; i++) await (await request(`${gw.url}/after-reload/${i}`)).body.text();
  await waitFor(() => lines(file).length === 45, { timeoutMs: 5000 });
  await gw.close();
  // A restart continues the chain from the file's last record.
  const again = await startGateway(yaml(upstream.url), { dir });
  for (let i = 0; i < 5; i++) await (await request(`${again.url}/after-restart/${i}`)).body.text();
  await waitFor(() => lines(file).length === 50, { timeoutMs: 5000 });
  await again.close();
  clean = lines(file);
});
afterAll(async () => {
  await upstream?.close();
});

describe('hash-chained audit records', () => {
  it('every record carries seq 1..n first and prev = SHA-256 of the previous exact line', () => {
    expect(clean).toHaveLength(50);
    let prev = GENESIS;
    clean.forEach((line, i) => {
      expect(line.startsWith(`{"seq":${i + 1},"prev":"${prev}",`), `line ${i + 1}`).toBe(true);
      const rec = JSON.parse(line) as Record<string, unknown>;
      expect(rec).toMatchObject({ seq: i + 1, prev, audit: true, msg: 'decision', decision: 'public', status: 200 });
      prev = sha(line);
    });
    const paths = clean.map((l) => (JSON.parse(l) as { path: string }).path);
    expect(new Set(paths.slice(0, 40)).size).toBe(40);
    expect(paths.slice(40, 45)).toEqual([0, 1, 2, 3, 4].map((i) => `/after-reload/${i}`));
    expect(paths.slice(45)).toEqual([0, 1, 2, 3, 4].map((i) => `/after-restart/${i}`));
  });

  it('audit verify: exit 0 on the clean file', async () => {
    const r = await cli(['audit', 'verify', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${file}: 50 records, chain intact; head ${sha(clean[49] as string)}\n`);
  });

  const tampered: Array<[string, (l: string[]) => string[], number, RegExp]> = [
    ['an edited record (status changed)', (l) => l.map((x, i) => (i === 11 ? x.replace('"status":200', '"status":403') : x)), 12, /edited/],
    ['an edited record (one byte of the path)', (l) => l.map((x, i) => (i === 0 ? x.replace('/page/', '/pagE/') : x)), 1, /edited/],
    ['a removed record', (l) => l.filter((_, i) => i !== 20), 21, /removed/],
    ['the first record removed', (l) => l.slice(1), 1, /removed/],
    ['two records swapped', (l) => l.map((x, i) => (i === 30 ? (l[31] as string) : i === 31 ? (l[30] as string) : x)), 31, /moved/],
    ['a duplicated record', (l) => [...l.slice(0, 10), l[9] as string, ...l.slice(10)], 11, /reordered or duplicated/],
    ['a record renumbered to hide a removal', (l) => {
      const out = l.filter((_, i) => i !== 5);
      out[5] = (out[5] as string).replace('"seq":7,', '"seq":6,');
      return out;
    }, 5, /edited/],
    ['a truncated line', (l) => l.map((x, i) => (i === 40 ? x.slice(0, 30) : x)), 41, /not a JSON record/],
    ['a forged record inserted', (l) => [...l.slice(0, 3), l[3]?.replace('"seq":4,', '"seq":4,"x":1,') as string, ...l.slice(4)], 4, /edited/],
  ];
  it.each(tampered)('audit verify: exit 1 naming the first bad line for %s', async (_name, tamper, line, problem) => {
    const bad = join(dir, `tampered-${line}.log`);
    writeFileSync(bad, `${tamper(clean).join('\n')}\n`);
    const r = await cli(['audit', 'verify', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.startsWith(`${bad}:${line}: `), r.stderr).toBe(true);
    expect(r.stderr).toMatch(problem);
  });

  it('audit verify: 2 for an unreadable file or a usage error; a file without a chain is refused', async () => {
    expect((await cli(['audit', 'verify', join(dir, 'missing.log')])).code).toBe(2);
    expect((await cli(['audit', 'verify'])).code).toBe(2);
    expect((await cli(['audit', 'check', file])).code).toBe(2);
    expect(verifyChain('{"level":"info","msg":"decision"}\n')).toEqual({ ok: false, line: 1, problem: 'no seq/prev: not a chained audit record' });
    expect(verifyChain('')).toEqual({ ok: true, records: 0, head: GENESIS });
  });

  it('audit_chain with audit to stdout is a config error', async () => {
    const err = await startGateway(yaml(upstream.url).replace('audit: audit.log, ', '')).then(
      (g) => g.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.path)).toEqual(['log.audit_chain']);
  });
});
