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

const SCRIPT = /<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi;
const STYLE = /<style\b[^>]*>([\s\S]*?)<\/style\s*>/gi;
const SRC_ATTR = /\bsrc\s*=/i;
const TYPE_ATTR = /\btype\s*=\s*["']?([^"'\s>]+)/i;
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

/** [directive, 'sha256-…'] of each inline script (JavaScript types only) and style of an HTML text. */
export function inlineHashes(html: string): Array<[LearnedDirective, string]> {
  const out: Array<[LearnedDirective, string]> = [];
  for (const m of html.matchAll(SCRIPT)) {
    const attrs = m[1] ?? '';
    const body = m[2] ?? '';
    if (SRC_ATTR.test(attrs) || body.length === 0) continue;
    const type = (TYPE_ATTR.exec(attrs)?.[1] ?? '').toLowerCase();
    if (!JS_TYPES.has(type)) continue;
    out.push(['script-src', sha256(body)]);
  }
  for (const m of html.matchAll(STYLE)) {
    const body = m[1] ?? '';
    if (body.length > 0) out.push(['style-src', sha256(body)]);
  }
  return out;
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
