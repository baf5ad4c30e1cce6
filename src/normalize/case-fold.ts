// Case folding the way Java's String.equalsIgnoreCase compares (and IIS/ASP.NET's ordinal-ignore-case reads
// a path): two characters are equal if identical, or if their simple upper-case mappings are equal, or their
// simple lower-case mappings are equal. foldKey maps each code point to lower(upper(c)), which puts every
// such pair under one key: `ı` (dotless i) and `İ` fold to `i`, `ſ` to `s`, the Kelvin sign to `k`.
// JavaScript's toUpperCase/toLowerCase use the full mappings (`ß` → `SS`); where a full mapping is more
// than one code point the simple mapping is used instead (the character itself, or `İ` → `i`).

const DOTTED_CAPITAL_I = 0x130;

function simpleUpper(ch: string): string {
  const up = ch.toUpperCase();
  return up.length === ch.length || [...up].length === 1 ? up : ch;
}

function simpleLower(ch: string): string {
  if (ch.codePointAt(0) === DOTTED_CAPITAL_I) return 'i';
  const low = ch.toLowerCase();
  return low.length === ch.length || [...low].length === 1 ? low : ch;
}

/** One code point's key: equal keys for every pair equalsIgnoreCase calls equal. */
export function foldCodePoint(ch: string): string {
  return simpleLower(simpleUpper(ch));
}

/** The folded key of a text (per code point). */
export function foldText(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return text.toLowerCase();
  let out = '';
  for (const ch of text) out += ch.charCodeAt(0) < 0x80 ? ch.toLowerCase() : foldCodePoint(ch);
  return out;
}

const HEX = '0123456789ABCDEF';

function encodeUtf8(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    // A non-ASCII letter may fold to ASCII (`ı` → `i`): that byte is written as the letter, like normalize does.
    out += byte < 0x80 ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/**
 * Folds a canonical path (normalize's form: ASCII, non-ASCII as upper-case %XX UTF-8, reserved bytes as
 * %XX): letters fold, escapes of ASCII bytes stay as they are (their hex digits must not be lower-cased).
 */
export function foldPath(path: string): string {
  if (!path.includes('%')) return path.toLowerCase();
  let out = '';
  let run = '';
  const flush = (): void => {
    if (run === '') return;
    out += encodeUtf8(foldText(decodeURIComponent(run)));
    run = '';
  };
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 /* % */) {
      const escape = path.slice(i, i + 3);
      if (parseInt(escape.slice(1), 16) >= 0x80) run += escape;
      else {
        flush();
        out += escape;
      }
      i += 2;
      continue;
    }
    flush();
    out += path[i]?.toLowerCase();
  }
  flush();
  return out;
}
