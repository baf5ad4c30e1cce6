// No function in src/ over 80 lines of its own (docs/architecture.md): a function's own lines are the lines it
// spans less those of the functions nested in it, so a factory that returns a closure is measured apart from
// its closure. Parses with oxc (rolldown/parseAst, TypeScript syntax): nothing is compiled or run.
//
//   node scripts/check-functions.ts [root] [max]      exit 0 when every function fits; otherwise one line each
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAst } from 'rolldown/parseAst';

export const MAX_OWN_LINES = 80;

export interface LongFunction {
  readonly file: string;
  readonly line: number;
  readonly name: string;
  readonly ownLines: number;
}

interface Node {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  readonly [key: string]: unknown;
}

const FUNCTION_TYPES = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression']);

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && typeof (v as Node).type === 'string' && typeof (v as Node).start === 'number';
}

function nameOf(fn: Node, parent: Node | undefined): string {
  const id = fn.id as Node | null | undefined;
  if (id && typeof id.name === 'string') return id.name;
  const key = parent?.key as Node | undefined;
  if (key && typeof key.name === 'string') return key.name;
  const target = parent?.id as Node | undefined;
  if (target && typeof target.name === 'string') return target.name;
  return '(anonymous)';
}

/** Every function of one source text with its own line count. */
export function functionsOf(source: string, file: string): LongFunction[] {
  const lineStarts = [0];
  for (let i = 0; i < source.length; i++) if (source.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const lineOf = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((lineStarts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const span = (n: Node): number => lineOf(n.end) - lineOf(n.start) + 1;
  const out: LongFunction[] = [];
  // Returns the lines of the functions directly nested under `node` (measured apart from their parent).
  const visit = (node: Node, parent: Node | undefined): number => {
    let nested = 0;
    for (const value of Object.values(node)) {
      const children = Array.isArray(value) ? value : [value];
      for (const child of children) {
        if (!isNode(child)) continue;
        if (FUNCTION_TYPES.has(child.type)) {
          const inner = visit(child, node);
          const own = span(child) - inner;
          out.push({ file, line: lineOf(child.start), name: nameOf(child, node), ownLines: own });
          nested += span(child);
        } else nested += visit(child, node);
      }
    }
    void parent;
    return nested;
  };
  visit(parseAst(source, { lang: 'ts' }) as unknown as Node, undefined);
  return out;
}

export function longFunctions(root: string, max = MAX_OWN_LINES): { functions: number; long: LongFunction[] } {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.push(p);
    }
  };
  walk(root);
  let functions = 0;
  const long: LongFunction[] = [];
  for (const f of files.sort()) {
    const all = functionsOf(readFileSync(f, 'utf8'), relative(root, f).split(sep).join('/'));
    functions += all.length;
    for (const fn of all) if (fn.ownLines > max) long.push(fn);
  }
  return { functions, long };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const max = Number(process.argv[3] ?? MAX_OWN_LINES);
  const { functions, long } = longFunctions(root, max);
  for (const f of long) console.error(`${f.file}:${f.line}: ${f.name} has ${f.ownLines} lines of its own (at most ${max})`);
  console.log(`functions: ${functions} checked, ${long.length} over ${max} lines`);
  process.exitCode = long.length === 0 ? 0 : 1;
}
