// Bounded JSON parsing for request bodies: JSON.parse silently keeps the last of duplicate keys and has
// no depth limit, so a small scanner runs first (one pass, no recursion) and refuses both.

export type JsonProblem = 'json' | 'duplicate-key' | 'depth';

export const MAX_DEPTH = 64;
// ignoreBOM keeps a BOM in the text, where JSON.parse refuses it (the bytes are forwarded as they are).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** One pass over the text: nesting depth and duplicate keys (after unescaping). Syntax is JSON.parse's job. */
function scan(text: string): JsonProblem | undefined {
  const keys: Array<Set<string> | null> = []; // per open container: keys seen (objects) or null (arrays)
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (keys.length >= MAX_DEPTH) return 'depth';
      keys.push(c === 0x7b ? new Set() : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      keys.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = keys.length > 0 && keys[keys.length - 1] !== null;
    } else if (c === 0x3a /* : */) {
      expectKey = false;
    } else if (c === 0x22 /* " */) {
      const start = i + 1;
      let escaped = false;
      for (i = start; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      if (i >= n) return 'json';
      const set = keys[keys.length - 1];
      if (expectKey && set) {
        let key = text.slice(start, i);
        if (escaped) {
          try {
            key = JSON.parse(`"${key}"`) as string;
          } catch {
            return 'json';
          }
        }
        if (set.has(key)) return 'duplicate-key';
        set.add(key);
        expectKey = false;
      }
    }
  }
  return undefined;
}

export function parseJsonBody(bytes: Buffer): { value: unknown } | { problem: JsonProblem } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { problem: 'json' };
  }
  const problem = scan(text);
  if (problem !== undefined) return { problem };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { problem: 'json' };
  }
}
