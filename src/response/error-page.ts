// Pages for people: the HTML a browser navigation gets instead of problem+json. Templates (the built-in one,
// or an operator's `error_pages.dir`) are compiled ONCE at load into literal parts and placeholder slots, and
// the page's own Content-Security-Policy (no script, inline <style> allowed by its sha256 hash) is computed
// then too; per request only the slots are filled, every value HTML-escaped.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../config/index.ts';

/** The closed list an operator template may use (README "Pages for people"). */
export const PAGE_PLACEHOLDERS = ['status', 'title', 'detail', 'request_id', 'time', 'login_url', 'logout_url'] as const;
export type PagePlaceholder = (typeof PAGE_PLACEHOLDERS)[number];
export type PageValues = Readonly<Record<PagePlaceholder, string>>;

/**
 * The built-in template also has `path` (escaped) and `actions`: markup the gateway builds from escaped
 * values (sign in / sign out / request access forms). Never available to operator templates.
 */
type BuiltinSlot = PagePlaceholder | 'path' | 'actions';

interface CompiledTemplate {
  /** literal, slot, literal, slot, …, literal */
  readonly literals: readonly string[];
  readonly slots: readonly BuiltinSlot[];
  /** The CSP header value of pages made from this template. */
  readonly csp: string;
}

export interface PageExtras {
  /** The requested path (built-in pages only). */
  readonly path?: string;
  /** Pre-escaped markup (built-in pages only): see renderActions in pipeline/error-page.ts. */
  readonly actions?: string;
}

export interface ErrorPages {
  /** Whether the operator's templates are in use (they cannot show the gateway's forms). */
  readonly custom: boolean;
  render(status: number, values: PageValues, extras: PageExtras): { body: string; csp: string };
  /** A gateway page that is not a refusal (/.zt/grants): `content` is markup built from escaped values. */
  page(title: string, requestId: string, content: string): { body: string; csp: string };
}

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const ESCAPE_RE = /[&<>"']/g;

export function escapeHtml(value: string): string {
  return value.replace(ESCAPE_RE, (c) => ESCAPES[c] as string);
}

const SLOT_RE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const STYLE_RE = /<style\b[^>]*>([\s\S]*?)<\/style\s*>/gi;

function cspFor(text: string, formAction: readonly string[]): string {
  const hashes: string[] = [];
  for (const m of text.matchAll(STYLE_RE)) {
    const h = `'sha256-${createHash('sha256').update(m[1] as string, 'utf8').digest('base64')}'`;
    if (!hashes.includes(h)) hashes.push(h);
  }
  // No script-src: default-src 'none' forbids every script, inline or not, and every external asset.
  return [
    "default-src 'none'",
    ...(hashes.length > 0 ? [`style-src ${hashes.join(' ')}`] : []),
    `form-action 'self'${formAction.length > 0 ? ` ${formAction.join(' ')}` : ''}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** Throws `problem(message, line)` for a placeholder outside `allowed`. */
function compileTemplate(
  text: string,
  allowed: ReadonlySet<string>,
  formAction: readonly string[],
  problem: (message: string, line: number) => never,
): CompiledTemplate {
  const literals: string[] = [];
  const slots: BuiltinSlot[] = [];
  let last = 0;
  for (const m of text.matchAll(SLOT_RE)) {
    const name = m[1] as string;
    if (!allowed.has(name)) {
      const line = text.slice(0, m.index).split('\n').length;
      problem(`unknown placeholder "{{${name}}}" (allowed: ${[...allowed].map((p) => `{{${p}}}`).join(', ')})`, line);
    }
    literals.push(text.slice(last, m.index));
    slots.push(name as BuiltinSlot);
    last = m.index + m[0].length;
  }
  literals.push(text.slice(last));
  if (/\{\{|\}\}/.test(literals.join(''))) problem('a "{{" or "}}" that is not a placeholder', 1);
  return Object.freeze({ literals: Object.freeze(literals), slots: Object.freeze(slots), csp: cspFor(text, formAction) });
}

function fill(t: CompiledTemplate, values: PageValues, extras: PageExtras): string {
  let out = t.literals[0] as string;
  for (let i = 0; i < t.slots.length; i++) {
    const slot = t.slots[i] as BuiltinSlot;
    const v = slot === 'actions' ? (extras.actions ?? '') : escapeHtml(slot === 'path' ? (extras.path ?? '') : values[slot]);
    out += v + (t.literals[i + 1] as string);
  }
  return out;
}

const BUILTIN_STYLE = `body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:34rem;margin:10vh auto;background:#fff;padding:2rem 2.25rem;border-radius:10px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.05rem;margin:1.25rem 0 .5rem}.st{color:#6b7280;font-size:.95rem;margin:0}
p.d{margin:1rem 0}dl{font-size:.85rem;color:#4b5563;display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem}
dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
form{display:inline-block;margin:.5rem .5rem 0 0}form.ra{display:block;border-top:1px solid #e5e7eb;padding-top:1rem}
label{display:block;font-size:.9rem;margin:.5rem 0 .2rem}input,select,textarea{font:inherit;width:100%;box-sizing:border-box}
button,a.b{font:inherit;padding:.4rem .9rem;border-radius:6px;border:1px solid #2563eb;background:#2563eb;color:#fff;text-decoration:none;cursor:pointer}
button.s{background:#fff;color:#2563eb}table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #e5e7eb;padding:.35rem;text-align:left;vertical-align:top}`;

/** The gateway's own page; `actions` carries its forms. */
export const BUILTIN_TEMPLATE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{{status}} {{title}}</title>
<style>${BUILTIN_STYLE}</style></head>
<body><main>
<h1>{{title}}</h1><p class="st">HTTP {{status}}</p>
<p class="d">{{detail}}</p>
{{actions}}
<dl><dt>Request ID</dt><dd>{{request_id}}</dd><dt>Time</dt><dd>{{time}}</dd><dt>Path</dt><dd>{{path}}</dd></dl>
</main></body></html>
`;

const PAGE_TEMPLATE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{{title}}</title>
<style>${BUILTIN_STYLE}</style></head>
<body><main>
<h1>{{title}}</h1>
{{actions}}
<dl><dt>Request ID</dt><dd>{{request_id}}</dd><dt>Time</dt><dd>{{time}}</dd></dl>
</main></body></html>
`;

const BUILTIN_SLOTS: ReadonlySet<string> = new Set<string>([...PAGE_PLACEHOLDERS, 'path', 'actions']);
const OPERATOR_SLOTS: ReadonlySet<string> = new Set<string>(PAGE_PLACEHOLDERS);
const TEMPLATE_NAME = /^(\d{3}|default)\.html$/;

/**
 * `dir` (relative to the config file) holds `<status>.html` files and the required `default.html`; undefined:
 * the built-in page. `formAction`: origins besides 'self' that forms may post to or be redirected to (the
 * IdPs' end-session origins, for sign out). Reports ConfigErrors located in the template file.
 */
export function compileErrorPages(dir: string | undefined, baseDir: string, formAction: readonly string[]): ErrorPages {
  const fail = (message: string): never => {
    throw new ConfigError('CFG_BAD_VALUE', ['error_pages'], message);
  };
  const plain = compileTemplate(PAGE_TEMPLATE, BUILTIN_SLOTS, formAction, fail);
  const page = (title: string, requestId: string, content: string) => {
    const values: PageValues = { status: '200', title, detail: '', request_id: requestId, time: new Date().toISOString(), login_url: '', logout_url: '' };
    return { body: fill(plain, values, { actions: content }), csp: plain.csp };
  };
  if (dir === undefined) {
    const builtin = compileTemplate(BUILTIN_TEMPLATE, BUILTIN_SLOTS, formAction, fail);
    return Object.freeze({ custom: false, page, render: (_status: number, values: PageValues, extras: PageExtras) => ({ body: fill(builtin, values, extras), csp: builtin.csp }) });
  }
  const root = resolve(baseDir, dir);
  let names: string[];
  try {
    names = readdirSync(root);
  } catch (err) {
    throw new ConfigError('CFG_BAD_FILE', ['error_pages', 'dir'], `cannot read the error_pages directory ${root}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!names.includes('default.html')) {
    throw new ConfigError('CFG_BAD_FILE', ['error_pages', 'dir'], `${root} has no default.html (the page for every status without its own <status>.html)`);
  }
  const byStatus = new Map<number, CompiledTemplate>();
  let fallback: CompiledTemplate | undefined;
  for (const name of names.sort()) {
    const m = TEMPLATE_NAME.exec(name);
    if (!m) continue;
    const file = resolve(root, name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError('CFG_BAD_FILE', ['error_pages', 'dir'], `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { external: { file } });
    }
    const problem = (message: string, line: number): never => {
      throw new ConfigError('CFG_BAD_FILE', ['error_pages', 'dir'], `${name}: ${message}`, { external: { file, line } });
    };
    const t = compileTemplate(text, OPERATOR_SLOTS, formAction, problem);
    if (m[1] === 'default') fallback = t;
    else byStatus.set(Number(m[1]), t);
  }
  const def = fallback as CompiledTemplate;
  return Object.freeze({
    custom: true,
    page,
    render(status: number, values: PageValues, extras: PageExtras) {
      const t = byStatus.get(status) ?? def;
      return { body: fill(t, values, extras), csp: t.csp };
    },
  });
}
