// node bench/record-request.ts [--baseline DIR] [--rounds 7] [--iterations 2000000]
// The metrics cost of one request: recordRequest (what exchange.ts calls once per request) in a loop, for a
// typical admitted JWT request (route, status 200, decision, authenticated method), in ns per call. With
// --baseline DIR (another checkout's tree: `git archive <commit> src | tar -x -C DIR`, node_modules linked
// in) both run in alternate rounds in this process, and the difference is what a change adds per request.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({ options: { baseline: { type: 'string' }, rounds: { type: 'string', default: '7' }, iterations: { type: 'string', default: '2000000' } } });
const rounds = Number(values.rounds);
const iterations = Number(values.iterations);

type Record = (...args: unknown[]) => void;
interface Subject { name: string; record: Record; metrics: unknown }

async function load(name: string, root: string): Promise<Subject> {
  const mod = (await import(pathToFileURL(resolve(root, 'src/metrics/index.ts')).href)) as { Metrics: new () => { route(n: string): unknown }; recordRequest: Record };
  const metrics = new mod.Metrics();
  metrics.route('app');
  return { name, record: mod.recordRequest, metrics };
}

const ctx = {
  method: 'GET',
  route: { name: 'app', public: false, mode: 'enforce' },
  decision: { allow: true, reasons: [{ reason: 'rule-matched' }] },
  identity: { method: 'jwt', amr: ['pwd'], acr: undefined, spiffeId: undefined },
  validation: null,
};
const mfa = { amr: new Set(['otp', 'mfa']), acr: new Set<string>() };
const facts = { code: undefined, upstreamSeconds: 0.002 };

function round(s: Subject): number {
  const start = process.hrtime.bigint();
  // Extra arguments are ignored by an older recordRequest (5 parameters).
  for (let i = 0; i < iterations; i++) s.record(s.metrics, mfa, ctx, 200, facts, 'GET', 0.0031 + (i & 7) * 0.001);
  return Number(process.hrtime.bigint() - start) / iterations;
}

const subjects = [await load('this tree', resolve(import.meta.dirname, '..'))];
if (values.baseline) subjects.push(await load('baseline', values.baseline));
for (const s of subjects) round(s); // warm up: compiled, cells resolved
const results = new Map<string, number[]>(subjects.map((s) => [s.name, []]));
for (let r = 0; r < rounds; r++) for (const s of r % 2 ? [...subjects].reverse() : subjects) results.get(s.name)?.push(round(s));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const [name, xs] of results) console.log(`${name}: median ${median(xs).toFixed(1)} ns/call (rounds: ${xs.map((x) => x.toFixed(1)).join(' ')})`);
if (subjects.length === 2) console.log(`difference: ${(median(results.get('this tree')!) - median(results.get('baseline')!)).toFixed(1)} ns/call`);
