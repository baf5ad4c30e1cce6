// Reads a YAML config file into a validated Config, with every problem located by line and column.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { ConfigError, formatPath, type ConfigErrorCode, type ConfigProblem, type KeyPath } from './errors.ts';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';
import { resolveReferences } from './secrets.ts';

export interface LoadedConfig {
  file: string;
  baseDir: string;
  config: Config;
  /** Finds the line/column of a key path, for errors found after schema validation. */
  locate: (path: ReadonlyArray<PropertyKey>, atKey?: boolean) => { line?: number; col?: number };
  /** Puts `${env:X}`/`${file:p}` back in place of resolved values that a problem message would echo. */
  redact?: (path: string, message: string) => string;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'read error';
    throw ConfigError.of([problem(file, 'CFG_BAD_FILE', [], `cannot read config file (${code})`)]);
  }
  return parseConfigText(text, file, dirname(absolute), env);
}

export function parseConfigText(text: string, file: string, baseDir: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  const problems: ConfigProblem[] = [];
  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    // A duplicate key names its path (the second occurrence is the one reported); syntax errors have none.
    const duplicate = e.code === 'DUPLICATE_KEY';
    const path = duplicate ? (keyPathAt(doc.contents, e.pos[0]) ?? []) : [];
    problems.push(problem(file, duplicate ? 'CFG_DUPLICATE' : 'CFG_SYNTAX', path, e.message.split('\n')[0] ?? e.message, pos));
  }
  if (problems.length > 0) throw ConfigError.of(sortProblems(problems));

  const locate = makeLocator(doc, lineCounter);
  const raw: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const references = new Map<string, { original: string; value: string }>();
  const unresolved = new Set<string>();
  const resolved = resolveTree(
    raw,
    [],
    { env, baseDir },
    (path, message) => {
      unresolved.add(formatPath(path));
      problems.push(problem(file, 'CFG_BAD_REFERENCE', path, message, locate(path)));
    },
    (path, original, value) => references.set(formatPath(path), { original, value }),
  );
  const redact = (path: string, message: string): string => {
    for (const [at, ref] of references) {
      // Short values (a port, "true") are only replaced where they sit; secrets are long enough to scrub anywhere.
      if (ref.value !== '' && (at === path || ref.value.length >= 8)) message = message.replaceAll(ref.value, ref.original);
    }
    return message;
  };
  const parsed = configSchema.safeParse(resolved);
  if (!parsed.success) {
    const where = { file, resolved, unresolved, locate, redact };
    for (const issue of parsed.error.issues) problems.push(...issueProblems(issue, where));
  }
  if (problems.length > 0 || !parsed.success) throw ConfigError.of(sortProblems(problems));
  return { file, baseDir, config: parsed.data, locate, redact };
}

/** A located problem (path '' and keyPath [] for the document as a whole). */
export function problem(file: string, code: ConfigErrorCode, keyPath: KeyPath, message: string, at: { line?: number; col?: number } = {}): ConfigProblem {
  return { file, path: formatPath(keyPath), message, code, keyPath, ...at };
}

type Issue = z.core.$ZodIssue;

/** The problems one zod issue stands for, with their codes (a custom issue may carry its code in params). */
function issueProblems(
  issue: Issue,
  where: { file: string; resolved: unknown; unresolved: ReadonlySet<string>; locate: LoadedConfig['locate']; redact: (path: string, message: string) => string },
): ConfigProblem[] {
  const { file, locate } = where;
  const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  // A value whose reference failed was already reported: the unresolved text is no value to check.
  if (where.unresolved.has(formatPath(path))) return [];
  // Point an unknown key at the key itself, which is what the operator has to delete.
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => problem(file, 'CFG_UNKNOWN_KEY', [...path, key], 'unknown key', locate([...path, key], true)));
  // zod does not report the input value: a key that is absent from the document is "missing",
  // anything else is a wrong value (reported at the value; a null value at its key).
  let code: ConfigErrorCode = 'CFG_BAD_VALUE';
  let message = issue.message;
  if (issue.code === 'custom') code = (issue.params?.['code'] as ConfigErrorCode | undefined) ?? code;
  else if (isMissing(where.resolved, path)) [code, message] = ['CFG_MISSING_KEY', 'required key is missing'];
  else if (issue.code === 'invalid_union') message = unionMessage(issue.errors) ?? message;
  else message = message.replace(/^Invalid (input|option): /, '');
  return [problem(file, code, path, where.redact(formatPath(path), message), locate(path))];
}

function makeLocator(doc: Document, lineCounter: LineCounter) {
  return (path: ReadonlyArray<PropertyKey>, atKey = false): { line?: number; col?: number } => {
    // An unknown key is reported at the key itself (what the operator must delete); so is a null value.
    const parent: unknown = path.length <= 1 ? doc.contents : doc.getIn(path.slice(0, -1) as unknown[], true);
    if (isMap(parent) && path.length > 0) {
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]);
      const empty = !isNode(pair?.value) || (isScalar(pair.value) && pair.value.value === null);
      if (pair && isNode(pair.key) && pair.key.range && (atKey || empty)) {
        const pos = lineCounter.linePos(pair.key.range[0]);
        return { line: pos.line, col: pos.col };
      }
    }
    // Walk up until a node exists: a missing key is reported at its parent.
    for (let depth = path.length; depth >= 0; depth--) {
      const node: unknown = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as unknown[], true);
      if (isNode(node) && node.range) {
        const pos = lineCounter.linePos(node.range[0]);
        return { line: pos.line, col: pos.col };
      }
    }
    return {};
  };
}

function resolveTree(
  value: unknown,
  path: (string | number)[],
  source: { env: NodeJS.ProcessEnv; baseDir: string },
  report: (path: (string | number)[], message: string) => void,
  resolvedAt: (path: (string | number)[], original: string, value: string) => void,
): unknown {
  if (typeof value === 'string') {
    try {
      const out = resolveReferences(value, source);
      if (out !== value) resolvedAt(path, value, out);
      return out;
    } catch (err) {
      report(path, (err as Error).message);
      return value;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveTree(v, [...path, i], source, report, resolvedAt));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveTree(v, [...path, k], source, report, resolvedAt);
    return out;
  }
  return value;
}

/** `host: 5` against "a string or a list": "expected string or array, received number" instead of "Invalid input". */
function unionMessage(branches: ReadonlyArray<ReadonlyArray<{ code: string; path: PropertyKey[]; message: string }>>): string | undefined {
  const expected: string[] = [];
  let received: string | undefined;
  for (const issues of branches) {
    const first = issues[0];
    const m = first && first.code === 'invalid_type' && first.path.length === 0 ? /expected (\S+), received (\S+)/.exec(first.message) : null;
    if (!m) return undefined;
    if (!expected.includes(m[1] as string)) expected.push(m[1] as string);
    received = m[2];
  }
  return expected.length > 0 ? `expected ${expected.join(' or ')}, received ${received}` : undefined;
}

/** True when the key at `path` is absent from its (existing) parent: a missing key, not a wrong value. */
function isMissing(root: unknown, path: ReadonlyArray<PropertyKey>): boolean {
  let node: unknown = root;
  for (let i = 0; i < path.length; i++) {
    if (node === null || typeof node !== 'object') return false;
    const key = path[i] as PropertyKey;
    if (!Object.hasOwn(node, key)) return i === path.length - 1;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node === undefined;
}

/** The key path of the map key that starts at `offset` (for duplicate-key errors). */
function keyPathAt(node: unknown, offset: number, path: (string | number)[] = []): (string | number)[] | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? (pair.key.value as string | number) : String(pair.key);
      if (isNode(pair.key) && pair.key.range?.[0] === offset) return [...path, key];
      const found = keyPathAt(pair.value, offset, [...path, key]);
      if (found) return found;
    }
  } else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) {
      const found = keyPathAt(node.items[i], offset, [...path, i]);
      if (found) return found;
    }
  }
  return undefined;
}

/** Problems in document order, so the operator can fix the file top to bottom. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || (a.p.col ?? 0) - (b.p.col ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}
