// `security_headers.csp.learn: true`: a tap on the bodies the gateway relays for the route. For the first
// LEARN_PAGES text/html pages (uncompressed, status 200) it copies at most LEARN_PAGE_BYTES aside (the
// client's response is written as it arrives, never held), and when the page has ended hashes each inline
// <script> and <style> for `csp suggest` ('sha256-…', what the browser computes over the element's text).
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { LEARN_PAGE_BYTES, type CspStore, type LearnedDirective } from './csp-store.ts';

/** The forwarder's view of a body tap (structurally proxy's BodyTap). */
export interface CspLearnTap {
  start(status: number, headers: IncomingHttpHeaders): { data(chunk: Buffer): void; end(): void } | null;
}

const SRC_ATTR = /(?:^|\s)src\s*=/i;
const TYPE_ATTR = /(?:^|\s)type\s*=\s*["']?([^"'\s>]+)/i;
const JS_TYPES = new Set(['', 'module', 'text/javascript', 'application/javascript', 'text/ecmascript', 'application/ecmascript']);

export function createLearnTap(store: CspStore, route: string): CspLearnTap {
  return {
    start(status, headers) {
      if (status !== 200) return null;
      const type = headers['content-type'];
      if (typeof type !== 'string' || !/^\s*text\/html\b/i.test(type)) return null;
      const encoding = headers['content-encoding'];
      if (encoding !== undefined && encoding !== 'identity') return null;
      if (!store.takeLearnPage(route)) return null;
      const chunks: Buffer[] = [];
      let size = 0;
      return {
        data(chunk) {
          if (size >= LEARN_PAGE_BYTES) return;
          const part = chunk.length > LEARN_PAGE_BYTES - size ? chunk.subarray(0, LEARN_PAGE_BYTES - size) : chunk;
          chunks.push(Buffer.from(part)); // a copy: the forwarder's chunk may be reused
          size += part.length;
        },
        end() {
          // After the client's response has ended: off the response's critical path.
          setImmediate(() => {
            for (const [directive, hash] of inlineHashes(Buffer.concat(chunks).toString('utf8'))) store.learn(route, directive, hash);
          });
        },
      };
    },
  };
}

/**
 * [directive, 'sha256-…'] of each inline script (JavaScript types only) and style of an HTML text. One forward
 * scan (every search starts where the previous one ended): linear in the page, whatever it contains.
 */
export function inlineHashes(html: string): Array<[LearnedDirective, string]> {
  const out: Array<[LearnedDirective, string]> = [];
  for (const [attrs, body] of elements(html, 'script')) {
    if (SRC_ATTR.test(attrs) || body.length === 0) continue;
    const type = (TYPE_ATTR.exec(attrs)?.[1] ?? '').toLowerCase();
    if (!JS_TYPES.has(type)) continue;
    out.push(['script-src', sha256(body)]);
  }
  for (const [, body] of elements(html, 'style')) if (body.length > 0) out.push(['style-src', sha256(body)]);
  return out;
}

/** Stateful (lastIndex) but only ever used by one synchronous scan at a time. */
const TAGS = {
  script: { open: /<script(?=[\s/>])/gi, close: /<\/script[\s/>]/gi },
  style: { open: /<style(?=[\s/>])/gi, close: /<\/style[\s/>]/gi },
} as const;

/** [attributes, text] of each <tag …>text</tag> (raw-text elements end at the first `</tag`). */
function* elements(html: string, tag: 'script' | 'style'): Generator<[string, string]> {
  const { open, close } = TAGS[tag];
  const gt = />/g;
  let at = 0;
  for (;;) {
    open.lastIndex = at;
    const o = open.exec(html);
    if (o === null) return;
    gt.lastIndex = o.index + tag.length + 1;
    const g = gt.exec(html);
    if (g === null) return;
    close.lastIndex = g.index + 1;
    const c = close.exec(html);
    if (c === null) return;
    yield [html.slice(o.index + tag.length + 1, g.index), html.slice(g.index + 1, c.index)];
    at = c.index + c[0].length;
  }
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
