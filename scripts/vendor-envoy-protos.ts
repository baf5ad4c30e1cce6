// Re-vendors the protos of Envoy's ext_authz gRPC service into proto/ (see proto/README.md):
//   node scripts/vendor-envoy-protos.ts <data-plane-api git dir> <googleapis git dir> <cncf/xds git dir>
// Starting at envoy/service/auth/v3/external_auth.proto it follows the imports, reads each file at the HEAD
// of the repository that holds it, and strips the validation and versioning annotations (validate/, udpa/,
// envoy/annotations/, xds/annotations/): options only, which change no field or wire format, so those trees
// need not be vendored. google/protobuf/* come with protobufjs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [envoyDir, googleDir, xdsDir] = process.argv.slice(2);
if (!envoyDir || !googleDir || !xdsDir) throw new Error('usage: vendor-envoy-protos.ts <data-plane-api> <googleapis> <xds>');
const out = new URL('../proto/', import.meta.url).pathname;
const ANNOTATION = /^(validate\/|udpa\/|envoy\/annotations\/|xds\/annotations\/)/;
const ROOTS = ['envoy/service/auth/v3/external_auth.proto', 'google/rpc/code.proto'];

function repoOf(file: string): string {
  if (file.startsWith('google/')) return googleDir as string;
  if (file.startsWith('xds/')) return xdsDir as string;
  return envoyDir as string;
}

const git = (dir: string, ...args: string[]) => execFileSync('git', ['--git-dir', dir, ...args], { encoding: 'utf8' });

/** Index just past the statement that starts at i: the `;` at brace depth 0, skipping strings. */
function statementEnd(text: string, i: number): number {
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (c === '"') j = text.indexOf('"', j + 1);
    else if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === ';' && depth === 0) return j + 1;
  }
  throw new Error('unterminated option');
}

/** `[deprecated = true, (x.y) = "3.0"]` → `[deprecated = true]`; only annotations → nothing. */
function keepBuiltinOptions(inner: string): string {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let j = 0; j <= inner.length; j++) {
    const c = inner[j];
    if (c === '"') j = inner.indexOf('"', j + 1);
    else if (c === '{' || c === '(') depth++;
    else if (c === '}' || c === ')') depth--;
    else if ((c === ',' && depth === 0) || j === inner.length) {
      parts.push(inner.slice(start, j).trim());
      start = j + 1;
    }
  }
  const kept = parts.filter((p) => p !== '' && !p.startsWith('('));
  return kept.length === 0 ? '' : ` [${kept.join(', ')}]`;
}

function strip(text: string): string {
  let result = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      result += text.slice(i, end);
      i = end;
    } else if (text[i] === '"') {
      const end = text.indexOf('"', i + 1) + 1;
      result += text.slice(i, end);
      i = end;
    } else if (/^option\s*\(/.test(text.slice(i, i + 12)) && /(^|\n)[ \t]*$/.test(result)) {
      // The whole line goes: its indentation, the statement and its newline.
      i = statementEnd(text, i);
      result = result.replace(/[ \t]*$/, '');
      if (text[i] === '\n') i++;
    } else if (text[i] === '[') {
      let depth = 0;
      let j = i;
      for (; j < text.length; j++) {
        if (text[j] === '"') j = text.indexOf('"', j + 1);
        else if (text[j] === '[') depth++;
        else if (text[j] === ']' && --depth === 0) break;
      }
      result = result.replace(/\s+$/, '') + keepBuiltinOptions(text.slice(i + 1, j).replace(/\s+/g, ' '));
      i = j + 1;
    } else {
      result += text[i];
      i++;
    }
  }
  return result
    .split('\n')
    .filter((l) => !/^import "(.*)";$/.test(l) || !ANNOTATION.test((/^import "(.*)";$/.exec(l) as RegExpExecArray)[1] as string))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
}

const done = new Set<string>();
const queue = [...ROOTS];
const sources: string[] = [];
while (queue.length > 0) {
  const file = queue.shift() as string;
  if (done.has(file)) continue;
  done.add(file);
  const repo = repoOf(file);
  const text = git(repo, 'show', `HEAD:${file}`);
  for (const m of text.matchAll(/^import "(.*)";$/gm)) {
    const dep = m[1] as string;
    if (!ANNOTATION.test(dep) && !dep.startsWith('google/protobuf/')) queue.push(dep);
  }
  mkdirSync(join(out, dirname(file)), { recursive: true });
  writeFileSync(join(out, file), strip(text));
  sources.push(`${file} (${git(repo, 'rev-parse', 'HEAD').trim()})`);
}
console.log(sources.sort().join('\n'));
