// `zt-gateway audit verify <file>`: exit 0 for an intact chain, 1 naming the first bad line, 2 unreadable.
import { readFileSync } from 'node:fs';
import { verifyChain } from '../audit/chain.ts';
import type { Output } from './validate.ts';

export function auditVerifyCommand(file: string, io: Output): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    io.err(`audit verify: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return 2;
  }
  const r = verifyChain(text);
  if (!r.ok) {
    io.err(`${file}:${r.line}: ${r.problem}`);
    return 1;
  }
  io.out(`${file}: ${r.records} records, chain intact; head ${r.head}`);
  return 0;
}
