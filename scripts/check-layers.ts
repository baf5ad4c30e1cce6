// The layering rules of docs/architecture.md, checked on the import graph of src/ (type-only imports count:
// a type cycle is still a cycle). A small script rather than dependency-cruiser: TypeScript 7 ships no JS
// compiler API for it to parse with, and our imports are plain top-level statements.
//
//   node scripts/check-layers.ts [root]      exit 0 when every rule holds; otherwise one line per violation
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Rank of each top-level folder: imports may only point to a lower rank, or across folders of one rank. */
export const LAYERS: Readonly<Record<string, number>> = Object.freeze({
  core: 0,
  config: 1,
  // the steps of the request path
  normalize: 2,
  routing: 2,
  authn: 2,
  authz: 2,
  ratelimit: 2,
  risk: 2,
  proxy: 2,
  response: 2,
  validate: 2,
  // the services the steps are handed by the orchestrator
  state: 3,
  audit: 3,
  metrics: 3,
  live: 3,
  tracing: 3,
  pipeline: 4,
  server: 5,
  cli: 6,
});

export interface Violation {
  readonly rule: 'cycle' | 'folder-cycle' | 'core-isolated' | 'sealed-folder' | 'layer' | 'unknown-folder';
  readonly from: string;
  readonly to: string;
  readonly detail: string;
}

export interface LayerReport {
  readonly modules: number;
  readonly imports: number;
  readonly violations: readonly Violation[];
}

// Top-level `import … from '…'`, `export … from '…'`, side-effect `import '…'`, and `import('…')`.
const IMPORT = /^(?:import|export)\b[^;]*?\bfrom\s*(['"])([^'"]+)\1|^import\s*(['"])([^'"]+)\3|\bimport\(\s*(['"])([^'"]+)\5\s*\)/gm;

function listModules(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(relative(root, p).split(sep).join('/'));
    }
  };
  walk(root);
  return out.sort();
}

/** Relative specifiers of one module, resolved to module paths relative to root. */
export function importsOf(source: string, modulePath: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT)) {
    const spec = m[2] ?? m[4] ?? m[6];
    if (spec === undefined || !spec.startsWith('.')) continue;
    out.push(normalize(join(dirname(modulePath), spec)).split(sep).join('/'));
  }
  return out;
}

const folderOf = (modulePath: string): string => (modulePath.includes('/') ? (modulePath.split('/')[0] as string) : '');

function checkEdge(from: string, to: string): Violation[] {
  const a = folderOf(from);
  const b = folderOf(to);
  if (a === b) return [];
  const ra = LAYERS[a];
  const rb = LAYERS[b];
  if (ra === undefined || rb === undefined) {
    return [{ rule: 'unknown-folder', from, to, detail: `folder "${ra === undefined ? a : b}" has no layer in scripts/check-layers.ts` }];
  }
  const out: Violation[] = [];
  if (a === 'core') out.push({ rule: 'core-isolated', from, to, detail: 'core/ imports nothing of the project' });
  else if (rb > ra) out.push({ rule: 'layer', from, to, detail: `${a}/ (layer ${ra}) must not import ${b}/ (layer ${rb})` });
  if (to !== `${b}/index.ts`) out.push({ rule: 'sealed-folder', from, to, detail: `import ${b}/ through ${b}/index.ts only` });
  return out;
}

/** Strongly connected components with more than one member (or a self-loop), by Tarjan's algorithm. */
export function cyclesOf(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop() as string;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.has(v)) out.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

function addEdge(graph: Map<string, Set<string>>, from: string, to: string): void {
  let set = graph.get(from);
  if (!set) graph.set(from, (set = new Set()));
  set.add(to);
}

export function checkLayers(root: string): LayerReport {
  const modules = listModules(root);
  const known = new Set(modules);
  const graph = new Map<string, Set<string>>();
  const folders = new Map<string, Set<string>>();
  const violations: Violation[] = [];
  let imports = 0;
  for (const from of modules) {
    graph.set(from, graph.get(from) ?? new Set());
    for (const to of importsOf(readFileSync(join(root, from), 'utf8'), from)) {
      imports++;
      if (!known.has(to)) {
        violations.push({ rule: 'unknown-folder', from, to, detail: 'import of a file that does not exist under the root' });
        continue;
      }
      addEdge(graph, from, to);
      violations.push(...checkEdge(from, to));
      if (folderOf(from) !== folderOf(to)) addEdge(folders, folderOf(from), folderOf(to));
    }
  }
  for (const scc of cyclesOf(graph)) violations.push({ rule: 'cycle', from: scc[0] as string, to: scc.at(-1) as string, detail: `import cycle: ${scc.join(' ↔ ')}` });
  for (const scc of cyclesOf(folders)) violations.push({ rule: 'folder-cycle', from: scc[0] as string, to: scc.at(-1) as string, detail: `folders import each other: ${scc.join(' ↔ ')}` });
  return { modules: modules.length, imports, violations };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const report = checkLayers(root);
  for (const v of report.violations) console.error(`${v.rule}: ${v.from} -> ${v.to}: ${v.detail}`);
  console.log(`layers: ${report.modules} modules, ${report.imports} imports, ${report.violations.length} violation(s)`);
  process.exitCode = report.violations.length === 0 ? 0 : 1;
}
