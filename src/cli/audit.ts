// `zt-gateway audit verify <file>`: exit 0 for an intact chain, 1 naming the first bad line, 2 unreadable.
// The file is streamed line by line: an audit log of any size is checked in bounded memory.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { chainVerifier } from '../audit/index.ts';
import type { Output } from './validate.ts';

export async function auditVerifyCommand(file: string, io: Output): Promise<number> {
  const v = chainVerifier();
  try {
    const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) if (v.line(line) !== undefined) break;
  } catch (err) {
    io.err(`audit verify: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return 2;
  }
  const r = v.end();
  if (!r.ok) {
    io.err(`${file}:${r.line}: ${r.problem}`);
    return 1;
  }
  io.out(`${file}: ${r.records} records, chain intact; head ${r.head}`);
  return 0;
}
