// The canonical form of a path: the grammar shared by the request path (normalize), path rules (authz) and
// the config's route paths. Anything ambiguous is refused, never "fixed" (DESIGN.md §4).
import { GatewayError } from './errors.ts';

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}
const HEX_UPPER = '0123456789ABCDEF';

// RFC 3986 unreserved: decoding these changes nothing for any conforming server, so we canonicalize them.
const UNRESERVED = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1;

// Code points that some servers fold into '/', '\' or '.' (best-fit code pages): refused in paths as
// ambiguous. Compatibility forms that NFKC folds into ASCII (e.g. U+2025 '‥' → '..', U+FF41 'ａ' → 'a')
// are caught by checkCompatibility below.
const LOOKALIKES = /[\u2024\u2215\u2216\uFF0E\uFF0F\uFF3C]/;
const ASCII = /[\u0000-\u007f]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function bad(detail: string): GatewayError {
  return new GatewayError('GW_ERR_BAD_PATH', detail);
}

export function hexAt(s: string, i: number): number {
  const hi = s.charCodeAt(i + 1);
  const lo = s.charCodeAt(i + 2);
  const h = hi < 128 ? (HEX[hi] as number) : -1;
  const l = lo < 128 ? (HEX[lo] as number) : -1;
  return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/** Canonicalizes an origin-form path (no query). Throws GatewayError GW_ERR_BAD_PATH. */
export function canonicalPath(raw: string): { path: string; matchPath: string } {
  if (raw.charCodeAt(0) !== 47) throw bad('path must start with /');
  let out = '';
  let matchOut = '';
  let segStart = 0; // index in `out` where the current segment began (after its '/')
  let segDecoded = ''; // decoded text of the current segment (ASCII only; used for dot checks)
  let inParams = false;
  let highBytes: number[] | null = null;
  const n = raw.length;

  const endSegment = (): void => {
    const name = segDecoded.split(';', 1)[0];
    if (name === '.' || name === '..') throw bad('dot segments are not allowed');
    // `/;x/admin` is `/admin` to Tomcat: a segment that is only parameters is as ambiguous as `//`.
    if (name === '' && segDecoded !== '') throw bad('a path segment may not start with ;');
    // `admin::$INDEX_ALLOCATION`, `file::$DATA`: NTFS stream syntax names the directory or file itself on Windows.
    if (segDecoded.includes(':$')) throw bad('NTFS stream names (:$) are not allowed in the path');
  };

  for (let i = 0; i < n; i++) {
    const c = raw.charCodeAt(i);
    if (c === 47 /* / */) {
      if (i > 0) {
        if (out.length === segStart) throw bad('empty path segments (//) are not allowed');
        endSegment();
      }
      out += '/';
      matchOut += '/';
      segStart = out.length;
      segDecoded = '';
      inParams = false;
      continue;
    }
    if (c <= 0x20 || c === 0x7f) throw bad('control characters and spaces are not allowed in the path');
    if (c > 0x7e) throw bad('raw non-ASCII characters must be percent-encoded');
    if (c === 92 /* \ */) throw bad('backslashes are not allowed in the path');
    if (c === 35 /* # */) throw bad('fragments are not allowed in the request target');
    if (c === 37 /* % */) {
      const byte = hexAt(raw, i);
      if (byte < 0) throw bad('invalid percent-encoding');
      i += 2;
      if (byte === 0x2f || byte === 0x5c) throw bad('encoded slashes and backslashes are not allowed in the path');
      if (byte < 0x20 || byte === 0x7f) throw bad('encoded control characters are not allowed in the path');
      let piece: string;
      if (byte < 0x80 && UNRESERVED[byte] === 1) {
        piece = String.fromCharCode(byte);
      } else {
        piece = `%${HEX_UPPER[byte >> 4]}${HEX_UPPER[byte & 15]}`;
        if (byte >= 0x80) (highBytes ??= []).push(byte);
      }
      out += piece;
      if (!inParams) matchOut += piece;
      segDecoded += byte < 0x80 ? String.fromCharCode(byte) : '\u0080';
      continue;
    }
    const ch = raw[i] as string;
    if (c === 59 /* ; */) inParams = true;
    out += ch;
    if (!inParams) matchOut += ch;
    segDecoded += ch;
  }
  endSegment();
  if (highBytes !== null) checkUtf8(out);
  return { path: out, matchPath: matchOut };
}

function checkUtf8(path: string): void {
  let text: string;
  try {
    text = utf8.decode(Buffer.from(decodeToBytes(path)));
  } catch {
    throw bad('percent-encoded bytes are not valid UTF-8');
  }
  if (LOOKALIKES.test(text)) throw bad('look-alike slash or dot characters are not allowed in the path');
  checkCompatibility(text);
}

/**
 * A backend that applies NFKC (Python's unicodedata, Java's Normalizer, some WAF/CDN layers) must not see a
 * path we did not route: `/ａdmin` (fullwidth a) or `/admⅰn` (roman numeral one) fold to `/admin`, `‥` to
 * `..`, U+037E (Greek question mark) to `;`. So any non-ASCII code point whose NFKC form contains an ASCII
 * character is refused: fullwidth forms, roman numerals, ligatures, superscripts, letter-like symbols.
 * Ordinary letters (é, ß, 日本) and combining marks fold to non-ASCII and stay allowed.
 */
function checkCompatibility(text: string): void {
  // A code point that folds differently makes the whole text fold differently: most paths stop here.
  if (text.normalize('NFKC') === text) return;
  for (const ch of text) {
    if (ch.charCodeAt(0) < 0x80) continue;
    const folded = ch.normalize('NFKC');
    if (folded !== ch && ASCII.test(folded)) {
      throw bad('compatibility look-alike characters (they fold to ASCII under NFKC) are not allowed in the path');
    }
  }
}

function decodeToBytes(s: string): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      bytes.push(hexAt(s, i));
      i += 2;
    } else bytes.push(c);
  }
  return bytes;
}
