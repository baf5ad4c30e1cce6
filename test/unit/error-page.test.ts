// The page templates (src/response/error-page.ts): compiled once, placeholders from a closed list, values
// always escaped, each <style> allowed by its own sha256 in the page's CSP and nothing else allowed.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileErrorPages, escapeHtml, PAGE_PLACEHOLDERS } from '../../src/response/index.ts';
import { tempDir } from '../helpers/gateway.ts';

const values = {
  status: '403',
  title: 'Access denied',
  detail: `<script>alert("x")</script> & 'q'`,
  request_id: 'r-1',
  time: '2026-12-03T00:00:00.000Z',
  login_url: '/.zt/login?provider=corp&return_to=%2Fa',
  logout_url: '/.zt/logout',
};

function pages(files: Record<string, string>) {
  const base = tempDir();
  mkdirSync(join(base, 'p'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(base, 'p', n), t);
  return () => compileErrorPages('p', base, ['https://idp.example']);
}

const sha = (css: string) => `'sha256-${createHash('sha256').update(css).digest('base64')}'`;

describe('error page templates', () => {
  it('escapes the five HTML metacharacters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('fills every placeholder escaped (spaces inside braces allowed); CSP hashes each distinct style', () => {
    const tpl = `<style>a{b:c}</style><style >d{e:f}</style><style>a{b:c}</style>${PAGE_PLACEHOLDERS.map((p) => `[{{ ${p} }}]`).join('')}`;
    const { render } = pages({ 'default.html': tpl })();
    const { body, csp } = render(403, values, {});
    expect(body).toContain('[&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;]');
    expect(body).toContain('[/.zt/login?provider=corp&amp;return_to=%2Fa]');
    expect(body).not.toContain('<script>');
    expect(csp).toBe(`default-src 'none'; style-src ${sha('a{b:c}')} ${sha('d{e:f}')}; form-action 'self' https://idp.example; frame-ancestors 'none'; base-uri 'none'`);
  });

  it('refuses unknown placeholders (even the built-in page\'s own), stray braces, and a missing default.html', () => {
    expect(pages({ 'default.html': '{{actions}}' })).toThrow(/unknown placeholder "\{\{actions\}\}"/);
    expect(pages({ 'default.html': '{{path}}' })).toThrow(/unknown placeholder "\{\{path\}\}"/);
    expect(pages({ 'default.html': 'a {{title} b' })).toThrow(/a "\{\{" or "\}\}" that is not a placeholder/);
    expect(pages({ '404.html': '{{title}}' })).toThrow(/has no default\.html/);
    // Files that are not <status>.html or default.html are ignored.
    expect(() => pages({ 'default.html': '{{title}}', 'notes.txt': '{{nope}}', 'x.html': '{{nope}}' })()).not.toThrow();
  });

  it('the built-in page: no script, one style allowed by hash, the gateway\'s actions markup as given', () => {
    const builtin = compileErrorPages(undefined, '/', []);
    const { body, csp } = builtin.render(404, values, { path: '/<x>', actions: '<p>act</p>' });
    expect(body).toContain('<dd>/&lt;x&gt;</dd>');
    expect(body).toContain('<p>act</p>');
    expect(body).not.toMatch(/<script|src=/);
    const css = /<style>([\s\S]*?)<\/style>/.exec(body)?.[1] as string;
    expect(csp).toBe(`default-src 'none'; style-src ${sha(css)}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
  });
});
