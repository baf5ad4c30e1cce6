// Rails `params`, PHP `$_REQUEST` and ASP.NET `Request[]` merge a form body with the query: on a route whose
// policy reads a query parameter, a form or multipart body that names the same parameter would let the body's
// value stand in for the checked one. Such a body is refused (400); any other body is forwarded byte for byte.
// The body is held up to MAX_FORM_BODY (core's bounded reader), then handed to forward() as read.
import { type RequestContext, GatewayError, headerOf, readRequestBody } from '../core/index.ts';
import { paramKeys } from '../normalize/index.ts';

/** Largest form or multipart body held for the check; a route that takes larger ones validates them (`validate`). */
export const MAX_FORM_BODY = 1024 * 1024;
const MAX_PART_HEAD = 8 * 1024;
const FORM = 'application/x-www-form-urlencoded';
const MULTIPART = 'multipart/form-data';
// Charsets in which ASCII names read as ASCII bytes: any other could hide a name from this check.
const ASCII_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii', 'iso-8859-1', 'latin1', 'windows-1252']);
type RequestBody = Parameters<typeof readRequestBody>[0];
// A header line `Content-Disposition: …` at the start of a line, with any continuation lines (obs-fold).
const DISPOSITION_LINE = /^[ \t]*content-disposition[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*/gim;
// RFC 2046 boundary characters: anything else is read differently by different parsers.
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
const BOUNDARY_PARAM = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]*))/gi;
const NAME_PARAM = /(?:^|[;\s])name\*?\s*=\s*(?:"((?:[^"\\\r\n]|\\.)*)"|([^;\s]*))/gi;

export interface BodyParamGuard {
  /** undefined: stream the body as received (not a form); a Buffer: the body, read and checked. */
  check(ctx: RequestContext, body: RequestBody): Promise<Buffer | undefined>;
}

function refuse(detail: string, close: boolean): GatewayError {
  return new GatewayError('GW_ERR_AMBIGUOUS_REQUEST', detail, close ? { headers: [['connection', 'close']] } : {});
}

function mediaParams(value: string): { type: string; params: Map<string, string> } {
  const [type = '', ...rest] = value.split(';');
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return { type: type.trim().toLowerCase(), params };
}

function once(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return text;
  }
}

/** Every name of a urlencoded body (split on `&` and `;`, as the query). */
function formNames(text: string): string[] {
  const out: string[] = [];
  for (const piece of text.split(/[&;]/)) {
    const eq = piece.indexOf('=');
    const raw = eq < 0 ? piece : piece.slice(0, eq);
    if (raw !== '') out.push(raw, once(raw));
  }
  return out;
}

function namesIn(head: string, out: string[]): void {
  for (const m of head.matchAll(NAME_PARAM)) {
    const value = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? '');
    out.push(value, once(value.replace(/^[^']*'[^']*'/, '')));
  }
}

/**
 * Every `name=` (and RFC 2231 `name*=`) a multipart parser could read, whatever it takes for the boundary:
 * those in the head of every part (a part starts after each occurrence of the boundary anywhere in the
 * body), and those on every line of the body that looks like a Content-Disposition header (with its folded
 * continuation lines). A superset: a file whose content looks like a part head is refused too.
 */
function multipartNames(text: string, boundary: string): string[] {
  const out: string[] = [];
  const delimiter = `--${boundary}`;
  for (let at = text.indexOf(delimiter); at >= 0; at = text.indexOf(delimiter, at + delimiter.length)) {
    const start = at + delimiter.length;
    const window = text.slice(start, start + MAX_PART_HEAD);
    const ends = [window.indexOf('\r\n\r\n'), window.indexOf('\n\n')].filter((i) => i >= 0);
    namesIn(ends.length ? window.slice(0, Math.min(...ends)) : window, out);
  }
  for (const m of text.matchAll(DISPOSITION_LINE)) namesIn(m[0], out);
  return out;
}

/** The one boundary of a multipart Content-Type; refused when missing, repeated or not RFC 2046 characters. */
function boundaryOf(contentType: string): string {
  const found = [...contentType.matchAll(BOUNDARY_PARAM)].map((m) => m[1] ?? m[2] ?? '');
  if (found.length !== 1 || !BOUNDARY.test(found[0] as string)) throw refuse('a multipart body needs exactly one valid boundary', true);
  return found[0] as string;
}

export function createBodyParamGuard(names: ReadonlySet<string>): BodyParamGuard {
  const named = (list: readonly string[]): string | undefined => list.find((n) => paramKeys(n).some((k) => names.has(k)));
  return {
    async check(ctx, body) {
      if (!ctx.hasBody) return undefined;
      let types = 0;
      for (let i = 0; i < ctx.rawHeaders.length; i += 2) if ((ctx.rawHeaders[i] as string).toLowerCase() === 'content-type') types++;
      if (types > 1) throw refuse('a body needs exactly one Content-Type', true);
      const contentType = headerOf(ctx, 'content-type');
      if (contentType === undefined) return undefined;
      const media = mediaParams(contentType);
      if (media.type !== FORM && media.type !== MULTIPART) return undefined;
      const charset = media.params.get('charset');
      const encoding = headerOf(ctx, 'content-encoding');
      if ((charset !== undefined && !ASCII_CHARSETS.has(charset.toLowerCase())) || (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity')) {
        throw refuse('a form body on this route must be plain UTF-8 or ASCII (its names are checked)', true);
      }
      const boundary = media.type === MULTIPART ? boundaryOf(contentType) : undefined;
      const tooLarge = () => new GatewayError('GW_ERR_BODY_TOO_LARGE', `a form body on this route may have at most ${MAX_FORM_BODY} bytes`, { headers: [['connection', 'close']] });
      const bytes = await readRequestBody(body, MAX_FORM_BODY, tooLarge);
      const latin1 = charset !== undefined && !charset.toLowerCase().startsWith('utf') && charset.toLowerCase() !== 'us-ascii';
      const text = bytes.toString(latin1 ? 'latin1' : 'utf8');
      const found = named(boundary !== undefined ? multipartNames(text, boundary) : formNames(text));
      if (found !== undefined) throw refuse('the body names a parameter that this route\'s policy reads from the query', false);
      return bytes;
    },
  };
}
