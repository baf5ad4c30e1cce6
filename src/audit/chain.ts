// Tamper-evident audit (log.audit_chain): every record line starts with "seq" (1, 2, …) and "prev", the
// SHA-256 hex of the previous record's exact line. Chained as each finished line is handed over, before the
// per-turn batching, so the order is the write order of the file. A restart continues the chain from the
// file's last line.
import { createHash, hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { DestinationStream } from 'pino';

export const GENESIS = '0'.repeat(64);

const sha256 = (line: string) => hash('sha256', line, 'hex');

interface Sink {
  write(data: string): unknown;
  flush?(cb?: (err?: Error) => void): void;
  flushSync?(): void;
  end?(): void;
}

/** The chain head of an existing file: its last line's seq and hash (genesis for a missing or empty file). */
function tailOf(file: string): { seq: number; prev: string; torn: boolean } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return { seq: 0, prev: GENESIS, torn: false };
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return { seq: 0, prev: GENESIS, torn: false };
    const len = Math.min(size, 1_048_576);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const text = buf.toString('utf8');
    const torn = !text.endsWith('\n');
    const body = torn ? text : text.slice(0, -1);
    const line = body.slice(body.lastIndexOf('\n') + 1);
    let seq = 0;
    try {
      const rec = JSON.parse(line) as { seq?: unknown };
      if (typeof rec.seq === 'number' && Number.isSafeInteger(rec.seq)) seq = rec.seq;
    } catch {
      // A damaged last line: the chain continues from it, and `audit verify` will name it.
    }
    return { seq, prev: sha256(line), torn };
  } finally {
    closeSync(fd);
  }
}

/** Wraps the file's destination: each pino line gets seq and prev inserted after its opening brace. */
export function chainedDestination(file: string, sink: Sink): DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void } {
  const head = tailOf(file);
  let seq = head.seq;
  let prev = head.prev;
  if (head.torn) sink.write('\n'); // never glue a record onto a half-written line
  return {
    write(line: string): void {
      const nl = line.endsWith('\n') ? line.length - 1 : line.length;
      const record = `{"seq":${++seq},"prev":"${prev}",${line.slice(1, nl)}`;
      prev = sha256(record);
      sink.write(`${record}\n`);
    },
    flush(cb) {
      if (sink.flush) sink.flush(cb);
      else cb?.();
    },
    flushSync() {
      sink.flushSync?.();
    },
  };
}

export type VerifyResult =
  | { ok: true; records: number; head: string }
  | { ok: false; line: number; problem: string };

/** Checks a chain one line at a time (a file of any size streams through it): the first problem sticks. */
export function chainVerifier(): { line(text: string): VerifyResult | undefined; end(): VerifyResult } {
  let prev = GENESIS;
  let n = 0;
  let failed: VerifyResult | undefined;
  const check = (line: string): VerifyResult | undefined => {
    n++;
    let rec: { seq?: unknown; prev?: unknown };
    try {
      rec = JSON.parse(line) as { seq?: unknown; prev?: unknown };
    } catch {
      return { ok: false, line: n, problem: 'not a JSON record (edited or truncated)' };
    }
    if (rec === null || typeof rec !== 'object' || typeof rec.seq !== 'number' || typeof rec.prev !== 'string') {
      return { ok: false, line: n, problem: 'no seq/prev: not a chained audit record' };
    }
    if (rec.seq > n) return { ok: false, line: n, problem: `seq ${rec.seq} where ${n} was expected: record(s) removed or moved before this line` };
    if (rec.seq < n) return { ok: false, line: n, problem: `seq ${rec.seq} where ${n} was expected: records reordered or duplicated` };
    if (rec.prev !== prev) {
      // Sequence numbers are intact, so the content of the line before changed (or this line's prev did).
      return n === 1
        ? { ok: false, line: n, problem: 'prev is not the chain start (the file does not begin the chain)' }
        : { ok: false, line: n - 1, problem: `edited: its hash does not match the prev recorded by line ${n}` };
    }
    prev = createHash('sha256').update(line).digest('hex');
    return undefined;
  };
  return {
    line(text) {
      if (failed === undefined) failed = check(text);
      return failed;
    },
    end: () => failed ?? { ok: true, records: n, head: prev },
  };
}

/** Checks a chained audit file held in memory; names the first line that was edited, removed around, or moved. */
export function verifyChain(text: string): VerifyResult {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const v = chainVerifier();
  for (const line of lines) if (v.line(line) !== undefined) break;
  return v.end();
}
