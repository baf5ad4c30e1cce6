// Reading one request header from the context's raw header list, with node:http's rules for duplicates.

/** Headers whose duplicates node:http drops (the first one counts); other duplicates are joined with ", ". */
const FIRST_WINS = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);

/** The value of a header (lower-case name) as node:http's req.headers would give it; undefined when absent. */
export function headerOf(ctx: { readonly rawHeaders: readonly string[] }, name: string): string | undefined {
  const raw = ctx.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string;
    if (n.length !== name.length || n.toLowerCase() !== name) continue;
    const v = raw[i + 1] as string;
    if (value === undefined) value = v;
    else if (FIRST_WINS.has(name)) return value;
    else value = `${value}, ${v}`;
  }
  return value;
}

/** All headers as node:http's req.headers would give them (lower-case names), for schemas that read many. */
export function headerObjectOf(ctx: { readonly rawHeaders: readonly string[] }): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = ctx.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (!FIRST_WINS.has(name)) out[name] = `${seen}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out;
}
