// A session cookie that does not fit one cookie (a big identity, sealed, without state.redis) is split over
// `<name>`, `<name>.1`, `<name>.2`: each one well under the ~4 KB browsers keep per cookie, all written (or
// cleared) together. The first one says how many there are (`3~…`); a sealed session never starts with a
// digit and `~` (a JWE starts with `ey`), so an unsplit cookie reads as before. Chunks are plain slices of
// one JWE: a tampered, foreign, reordered or missing chunk makes the whole fail to open (unauthenticated).
import { clearCookie, hostCookie } from './cookies.ts';

/** Characters of one cookie's value (with name and attributes the Set-Cookie line stays under 4 KB). */
export const CHUNK_CHARS = 3800;
/** At most this many cookies per session. */
export const MAX_CHUNKS = 3;
/** The longest sealed session a browser can carry: MAX_CHUNKS cookies, less the count marker. */
export const MAX_SESSION_CHARS = MAX_CHUNKS * CHUNK_CHARS - 2;

const SPLIT = /^([1-9])~/;

export function chunkName(name: string, i: number): string {
  return i === 0 ? name : `${name}.${i}`;
}

/**
 * The session cookie's value put together from its chunks; undefined without the first one. A split
 * cookie with a chunk missing (or a count above MAX_CHUNKS) reads as '' (opens to nothing, never a crash).
 */
export function joinSessionCookie(cookies: ReadonlyMap<string, string>, name: string): string | undefined {
  const first = cookies.get(name);
  if (first === undefined) return undefined;
  const m = SPLIT.exec(first);
  if (m === null) return first;
  const n = Number(m[1]);
  if (n < 2 || n > MAX_CHUNKS) return '';
  let out = first.slice(2);
  for (let i = 1; i < n; i++) {
    const part = cookies.get(chunkName(name, i));
    if (part === undefined || part === '') return '';
    out += part;
  }
  return out;
}

/**
 * Set-Cookie lines for a session value (at most MAX_SESSION_CHARS: the store checks), split when needed.
 * Chunks of a bigger earlier session that the request still carried (`present`) are cleared, so a stale
 * `.2` never lingers.
 */
export function sessionCookies(name: string, value: string, maxAgeSeconds: number, present: ReadonlyMap<string, string> | undefined): string[] {
  const out: string[] = [];
  let n = 1;
  if (value.length <= CHUNK_CHARS) out.push(hostCookie(name, value, maxAgeSeconds));
  else {
    const body = CHUNK_CHARS - 2; // the first cookie carries the `n~` marker
    n = 1 + Math.ceil((value.length - body) / CHUNK_CHARS);
    out.push(hostCookie(name, `${n}~${value.slice(0, body)}`, maxAgeSeconds));
    for (let i = 1; i < n; i++) out.push(hostCookie(chunkName(name, i), value.slice(body + (i - 1) * CHUNK_CHARS, body + i * CHUNK_CHARS), maxAgeSeconds));
  }
  for (let i = n; i < MAX_CHUNKS; i++) if (present?.has(chunkName(name, i))) out.push(clearCookie(chunkName(name, i)));
  return out;
}

/** Clears the session cookie and every chunk it may have (all of them: logout must leave nothing). */
export function clearSessionCookies(name: string): string[] {
  const out = [clearCookie(name)];
  for (let i = 1; i < MAX_CHUNKS; i++) out.push(clearCookie(chunkName(name, i)));
  return out;
}

/** Room the rest of a browser request needs beside the session cookies (request line, other headers). */
const OTHER_HEADERS_BYTES = 2048;

/**
 * The header budget a split session needs: without state.redis, the Cookie header may carry MAX_CHUNKS
 * full chunks (names, `=`, `; `), and the gateway must read it (listen.limits.max_header_bytes).
 */
export function sessionHeaderBytes(cookieName: string): number {
  return MAX_CHUNKS * (cookieName.length + 2 + 1 + CHUNK_CHARS + 2) + OTHER_HEADERS_BYTES;
}
