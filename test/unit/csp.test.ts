// CSP reporting parts on their own: report parsing (every field attacker-written), the bounded aggregate
// (1,000 keys per route, least recently seen dropped; logged once per key per minute), the report budget,
// the inline hashes of `learn: true`, and the `csp suggest` policy arithmetic.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { blockedSource, CspReportError, parseCspReport } from '../../src/response/csp-report.ts';
import { CspStore, LEARN_PAGES, LEARN_PAGE_BYTES, MAX_CLIENTS, MAX_KEYS, MAX_TOTAL_KEYS, REPORTS_PER_MINUTE } from '../../src/response/csp-store.ts';
import { createLearnTap, inlineHashes } from '../../src/response/csp-learn.ts';
import { compileSecurityHeaders } from '../../src/response/security-headers.ts';
import { suggest, type SuggestInput } from '../../src/cli/csp-suggest.ts';

const sha = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

describe('parseCspReport', () => {
  it('normalizes the blocked source: keywords, schemes, origins (no path or query), anything else other', () => {
    expect(blockedSource('inline')).toBe("'inline'");
    expect(blockedSource('EVAL')).toBe("'eval'");
    expect(blockedSource('wasm-eval')).toBe("'wasm-eval'");
    expect(blockedSource('data')).toBe('data:');
    expect(blockedSource('blob:https://a.example/uuid')).toBe('blob:');
    expect(blockedSource('https://cdn.example.com:8443/x.js?token=secret')).toBe('https://cdn.example.com:8443');
    expect(blockedSource('wss://ws.example.com/socket')).toBe('wss://ws.example.com');
    for (const v of ['', 'self', 'javascript', 42, null, 'x'.repeat(5000), 'https://']) expect(blockedSource(v)).toBe("'other'");
  });

  it('reads effective-directive, else the first token of violated-directive; drops the document query', () => {
    expect(parseCspReport('csp-report', JSON.stringify({ 'csp-report': { 'violated-directive': "script-src 'self'", 'blocked-uri': 'eval', 'document-uri': 'https://a/x/y?z=1#f' } }))).toEqual([
      { directive: 'script-src', blocked: "'eval'", documentPath: '/x/y' },
    ]);
    expect(parseCspReport('csp-report', JSON.stringify({ 'csp-report': { 'effective-directive': 'IMG-SRC', 'blocked-uri': 'data' } }))).toEqual([
      { directive: 'img-src', blocked: 'data:', documentPath: '' },
    ]);
  });

  it('refuses what is not a report of its format (CspReportError), and reads at most 100 reports a body', () => {
    for (const [format, text] of [
      ['csp-report', 'nope'],
      ['csp-report', '{"csp-report": {"effective-directive": "a b c"}}'],
      ['csp-report', '{"csp-report": {"effective-directive": "x".repeat(50)}}'],
      ['reports+json', '{}'],
    ] as const) {
      expect(() => parseCspReport(format, text)).toThrow(CspReportError);
    }
    const many = Array.from({ length: 150 }, () => ({ type: 'csp-violation', body: { effectiveDirective: 'img-src', blockedURL: 'https://x.example/' } }));
    expect(parseCspReport('reports+json', JSON.stringify(many))).toHaveLength(100);
  });
});

describe('CspStore', () => {
  it('keeps at most 1,000 keys per route, dropping the least recently seen; clients are distinct addresses', () => {
    let now = 1_000_000;
    const counted: string[] = [];
    const store = new CspStore({ now: () => now, count: (r, d) => counted.push(`${r} ${d}`) });
    store.add('a', { directive: 'img-src', blocked: 'https://first.example', documentPath: '/p' }, '10.0.0.1');
    for (let i = 0; i < MAX_KEYS - 1; i++) store.add('a', { directive: 'img-src', blocked: `https://h${i}.example`, documentPath: '' }, '10.0.0.1');
    now += 1000;
    store.add('a', { directive: 'img-src', blocked: 'https://first.example', documentPath: '/q' }, '10.0.0.2'); // seen again: most recent
    store.add('a', { directive: 'img-src', blocked: 'https://new.example', documentPath: '' }, '10.0.0.1'); // evicts h0
    const [route] = store.violations('a');
    expect(route!.violations).toHaveLength(MAX_KEYS);
    expect(route!.violations.some((v) => v.blocked === 'https://h0.example')).toBe(false);
    expect(route!.violations[1]).toEqual({
      directive: 'img-src', blocked: 'https://first.example', count: 2, clients: 2,
      first_seen: new Date(1_000_000).toISOString(), last_seen: new Date(1_001_000).toISOString(), sample_path: '/q',
    });
    expect(counted).toHaveLength(MAX_KEYS + 2);
    expect(store.violations('b')).toEqual([{ route: 'b', violations: [], learned: { 'script-src': [], 'style-src': [] } }]);
  });

  it('bounds the whole store: MAX_TOTAL_KEYS keys over all routes, MAX_CLIENTS addresses per key', () => {
    const counted: string[] = [];
    const store = new CspStore({ count: (r) => counted.push(r) });
    const routes = Math.ceil(MAX_TOTAL_KEYS / MAX_KEYS);
    for (let r = 0; r < routes; r++) for (let i = 0; i < MAX_KEYS; i++) store.add(`r${r}`, { directive: 'img-src', blocked: `https://h${i}.example`, documentPath: '' }, '1');
    const total = () => store.violations().reduce((n, x) => n + x.violations.length, 0);
    expect(total()).toBe(MAX_TOTAL_KEYS);
    // A new route's first key: counted, not kept (nothing of its own to evict); a full route evicts its own oldest.
    store.add('late', { directive: 'img-src', blocked: 'https://late.example', documentPath: '' }, '1');
    expect(store.violations('late')[0]!.violations).toEqual([]);
    store.add('r0', { directive: 'img-src', blocked: 'https://newer.example', documentPath: '' }, '1');
    expect(total()).toBe(MAX_TOTAL_KEYS);
    expect(store.violations('r0')[0]!.violations[0]!.blocked).toBe('https://newer.example');
    expect(counted.filter((r) => r === 'late')).toHaveLength(1);
    for (let i = 0; i < MAX_CLIENTS + 50; i++) store.add('c', { directive: 'img-src', blocked: 'https://c.example', documentPath: '' }, `10.0.${i >> 8}.${i & 255}`);
    expect(store.violations('c')[0]!.violations).toEqual([]); // the store is full
    const small = new CspStore();
    for (let i = 0; i < MAX_CLIENTS + 50; i++) small.add('c', { directive: 'img-src', blocked: 'https://c.example', documentPath: '' }, `10.0.${i >> 8}.${i & 255}`);
    expect(small.violations('c')[0]!.violations[0]).toMatchObject({ count: MAX_CLIENTS + 50, clients: MAX_CLIENTS });
  });

  it('logs a key at most once a minute, with its running totals', () => {
    let now = 0;
    const lines: Array<Record<string, unknown>> = [];
    const store = new CspStore({ now: () => now, log: (f) => lines.push(f) });
    const v = { directive: 'script-src-elem', blocked: "'inline'", documentPath: '/' };
    store.add('a', v, '1');
    now = 59_999;
    store.add('a', v, '2');
    expect(lines).toHaveLength(1);
    now = 60_000;
    store.add('a', v, '3');
    expect(lines.map((l) => (l.csp as { count: number; clients: number }).count)).toEqual([1, 3]);
    expect(lines[1]!.csp).toMatchObject({ route: 'a', clients: 3 });
  });

  it('allows each address REPORTS_PER_MINUTE reports a minute', () => {
    let now = 0;
    const store = new CspStore({ now: () => now });
    for (let i = 0; i < REPORTS_PER_MINUTE; i++) expect(store.allowReport('1.1.1.1')).toBe(true);
    expect(store.allowReport('1.1.1.1')).toBe(false);
    expect(store.allowReport('2.2.2.2')).toBe(true);
    now = 60_000;
    expect(store.allowReport('1.1.1.1')).toBe(true);
  });
});

describe('learn: inline hashes', () => {
  it('hashes inline scripts of JavaScript types and styles exactly as written; not src= scripts or data blocks', () => {
    const html = `<html><head><script>var a = 1;</script><SCRIPT type="module">import x from './x.js';\n</SCRIPT>
<script src="/x.js"></script><script type="application/ld+json">{"a":1}</script><style>p { color: red }</style>
<script type=text/javascript >
  document.body.dataset.x = "é";
</script ></head></html>`;
    expect(inlineHashes(html)).toEqual([
      ['script-src', sha('var a = 1;')],
      ['script-src', sha("import x from './x.js';\n")],
      ['script-src', sha('\n  document.body.dataset.x = "é";\n')],
      ['style-src', sha('p { color: red }')],
    ]);
  });

  it('scans a hostile page in linear time (no backtracking on unclosed tags)', () => {
    for (const html of ['<script '.repeat(130_000), '<script>'.repeat(130_000), `<script>${'<style>'.repeat(100_000)}`, '<script data-src="x">ok()</script>'.repeat(20_000)]) {
      const t = performance.now();
      inlineHashes(html);
      expect(performance.now() - t).toBeLessThan(500);
    }
    expect(inlineHashes('<script data-src="x">ok()</script>')).toEqual([['script-src', sha('ok()')]]);
  });

  it('taps only text/html 200 uncompressed pages, the first LEARN_PAGES of a route, at most LEARN_PAGE_BYTES each', async () => {
    const store = new CspStore();
    const tap = createLearnTap(store, 'r');
    expect(tap.start(200, { 'content-type': 'application/json' })).toBeNull();
    expect(tap.start(404, { 'content-type': 'text/html' })).toBeNull();
    expect(tap.start(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' })).toBeNull();
    const sink = tap.start(200, { 'content-type': 'text/html; charset=utf-8' })!;
    sink.data(Buffer.from('<script>one()</scr'));
    sink.data(Buffer.from('ipt>'));
    sink.end();
    const late = tap.start(200, { 'content-type': 'text/html' })!;
    late.data(Buffer.alloc(LEARN_PAGE_BYTES, 0x20));
    late.data(Buffer.from('<script>beyond()</script>')); // past the byte budget: not read
    late.end();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(store.violations('r')[0]!.learned['script-src']).toEqual([sha('one()')]);
    for (let i = 2; i < LEARN_PAGES; i++) expect(tap.start(200, { 'content-type': 'text/html' })).not.toBeNull();
    expect(tap.start(200, { 'content-type': 'text/html' })).toBeNull();
  });
});

describe('csp suggest', () => {
  const policy = compileSecurityHeaders({}, undefined).csp!.directives;
  const input = (over: Partial<SuggestInput>): SuggestInput => ({ route: 'r', policy, violations: [], learned: {}, learn: false, reportOnly: true, ...over });
  const key = (directive: string, blocked: string, clients = 1) => ({ directive, blocked, clients, count: clients });

  it('adds each source to the directive that governed it, replacing none; nothing for what is already allowed', () => {
    const s = suggest(input({ violations: [key('connect-src', 'https://api.example.com'), key('img-src', 'data:'), key('script-src-attr', "'inline'"), key('object-src', 'https://o.example')] }), 1);
    expect(s.directives).toEqual({
      // connect-src was not in the policy: a new directive from default-src.
      'connect-src': ["'self'", 'https://api.example.com'],
      'script-src-attr': ["'unsafe-inline'"],
      'object-src': ['https://o.example'],
    });
    expect(s.warnings).toEqual([expect.stringMatching(/^script-src-attr: inline event handlers/)]);
  });

  it("learned hashes replace 'unsafe-inline' for inline elements; --min-clients leaves keys out", () => {
    const hashes = [sha('a()'), sha('b()')];
    const s = suggest(input({ learn: true, learned: { 'script-src': hashes }, violations: [key('script-src-elem', "'inline'", 3), key('script-src-elem', 'https://cdn.example', 1)] }), 2);
    expect(s.directives).toEqual({ 'script-src': ["'self'", ...hashes] });
    expect(s.skipped).toEqual([key('script-src-elem', 'https://cdn.example', 1)]);
    expect(s.warnings).toEqual([]);
    const none = suggest(input({ learn: true, violations: [key('script-src-elem', "'inline'")] }), 1);
    expect(none.directives).toEqual({ 'script-src': ["'self'", "'unsafe-inline'"] });
    expect(none.warnings).toEqual([expect.stringMatching(/no inline hash learned yet/)]);
  });
});
