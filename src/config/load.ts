// Reads a YAML config file into a validated Config, with every problem located by line and column.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { ConfigError, formatPath, type ConfigProblem } from './errors.ts';
import { configSchema, type Config } from './schema.ts';
import { resolveReferences } from './secrets.ts';

export interface LoadedConfig {
  file: string;
  baseDir: string;
  config: Config;
  /** Finds the line/column of a key path, for errors found after schema validation. */
  locate: (path: ReadonlyArray<PropertyKey>, atKey?: boolean) => { line?: number; col?: number };
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'read error';
    throw new ConfigError([{ file, path: '', message: `cannot read config file (${code})` }]);
  }
  return parseConfigText(text, file, dirname(absolute), env);
}

export function parseConfigText(text: string, file: string, baseDir: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  const problems: ConfigProblem[] = [];
  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    problems.push({ file, path: '', message: e.message.split('\n')[0] ?? e.message, line: pos.line, col: pos.col });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const locate = makeLocator(doc, lineCounter);
  const raw: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const resolved = resolveTree(raw, [], { env, baseDir }, (path, message) =>
    problems.push({ file, path: formatPath(path), message, ...locate(path) }),
  );
  const parsed = configSchema.safeParse(resolved);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      let path: PropertyKey[] = [...issue.path];
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') {
        // Point at the unknown key itself, which is what the operator has to delete.
        for (const key of issue.keys) {
          path = [...issue.path, key];
          problems.push({ file, path: formatPath(path), message: 'unknown key', ...locate(path, true) });
        }
        continue;
      }
      if (issue.code === 'invalid_type' && issue.input === undefined) message = 'required key is missing';
      problems.push({ file, path: formatPath(path), message, ...locate(path) });
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return { file, baseDir, config: parsed.data, locate };
}

function makeLocator(doc: Document, lineCounter: LineCounter) {
  return (path: ReadonlyArray<PropertyKey>, atKey = false): { line?: number; col?: number } => {
    // An unknown key is reported at the key itself (what the operator must delete); so is a null value.
    const parent: unknown = path.length <= 1 ? doc.contents : doc.getIn(path.slice(0, -1) as unknown[], true);
    if (isMap(parent) && path.length > 0) {
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]);
      if (pair && isNode(pair.key) && pair.key.range && (atKey || !isNode(pair.value))) {
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
  path: PropertyKey[],
  source: { env: NodeJS.ProcessEnv; baseDir: string },
  report: (path: PropertyKey[], message: string) => void,
): unknown {
  if (typeof value === 'string') {
    try {
      return resolveReferences(value, source);
    } catch (err) {
      report(path, (err as Error).message);
      return value;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveTree(v, [...path, i], source, report));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveTree(v, [...path, k], source, report);
    return out;
  }
  return value;
}
