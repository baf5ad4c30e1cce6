// ${env:NAME} and ${file:path} references, resolved once at load. Values never appear in errors.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const REFERENCE = /\$\{(env|file):([^}]*)\}/g;
// `${ENV:X}`, `${vault:x}`: a typo would otherwise be used literally, e.g. as a session secret.
const UNKNOWN_KIND = /\$\{(?!(?:env|file):)([A-Za-z][A-Za-z0-9_-]*):[^}]*\}/;

export interface SecretSource {
  env: NodeJS.ProcessEnv;
  baseDir: string;
}

/** Returns the string with every reference replaced, or throws an Error naming the missing reference. */
export function resolveReferences(text: string, source: SecretSource): string {
  if (!text.includes('${')) return text;
  const unknown = UNKNOWN_KIND.exec(text);
  if (unknown) throw new Error(`unknown reference kind "${unknown[1]}" in \${${unknown[1]}:…} (use \${env:NAME} or \${file:path})`);
  return text.replace(REFERENCE, (_whole, kind: string, name: string) => {
    if (kind === 'env') {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid environment variable name in \${env:${name}}`);
      const value = source.env[name];
      if (value === undefined) throw new Error(`environment variable ${name} referenced by \${env:${name}} is not set`);
      return value;
    }
    if (name === '') throw new Error('empty path in ${file:}');
    const path = resolve(source.baseDir, name);
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'read error';
      throw new Error(`file ${name} referenced by \${file:${name}} cannot be read (${code})`);
    }
  });
}
