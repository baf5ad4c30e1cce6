// safeReturnTo: where a login may send the browser back to. Only a same-origin path (with its query) as it
// arrived on the wire; anything a browser could resolve to another origin — protocol-relative, backslash,
// whitespace or control characters that browsers strip, encoded slashes, schemes — becomes '/'. Each
// kept value is also checked the way a browser reads a Location: resolved against the gateway's origin,
// it must stay on that origin.
import { describe, expect, it } from 'vitest';
import { safeReturnTo } from '../../src/authn/oidc/return-to.ts';

const ORIGIN = 'https://gw.example';

/** What a browser would do with `Location: <value>` on a page of ORIGIN. */
function browserTarget(value: string): URL {
  return new URL(value, `${ORIGIN}/current/page`);
}

describe('safeReturnTo refuses anything that can leave the origin', () => {
  it.each([
    '//evil.example',
    '//evil.example/path?x=1',
    '///evil.example',
    '////evil.example',
    '/\\evil.example',
    '/\\/evil.example',
    '\\\\evil.example',
    '\\/evil.example',
    '/%09/evil.example',
    '/%0A/evil.example',
    '/%0d%0a/evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '/\r\n/evil.example',
    '/%00/evil.example',
    '/\x00/evil.example',
    'https:evil.example',
    'https://evil.example',
    'http://evil.example/',
    'HTTPS://evil.example',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    '/%2F/evil.example',
    '/%2f/evil.example',
    '/%2F%2Fevil.example',
    '%2F%2Fevil.example',
    '%2f%2fevil.example',
    '/%5Cevil.example',
    '/%5cevil.example',
    '/%5C%5Cevil.example',
    '%5C%5Cevil.example',
    ' /evil.example',
    ' //evil.example',
    '/ /evil.example',
    '/\u3002evil.example',
    '/\u2028',
    '/caf\u00e9',
    'evil.example',
    '.evil.example',
    '?next=/x',
    '#/x',
    '/%E0%A4%A', // invalid percent-encoding
    '/%',
    '',
    `/${'a'.repeat(2048)}`,
  ])('%j → /', (value) => {
    expect(safeReturnTo(value)).toBe('/');
  });

  it('refuses non-strings', () => {
    expect(safeReturnTo(undefined)).toBe('/');
    expect(safeReturnTo(null as unknown as string)).toBe('/');
    expect(safeReturnTo(['/x'] as unknown as string)).toBe('/');
    expect(safeReturnTo({ toString: () => '/x' } as unknown as string)).toBe('/');
  });
});

describe('safeReturnTo keeps same-origin paths and their queries unchanged', () => {
  it.each([
    '/',
    '/app/page?x=1',
    '/app/page?x=1&y=%2F',
    '/a/b?next=//evil.example',
    '/a/b?next=https://evil.example/',
    '/x/%2Fy',
    '/%252F%252Fevil.example',
    '/..dir/x',
    '/search?q=%E2%9C%93',
    '/a/b/',
    `/${'a'.repeat(2000)}`,
  ])('%j is kept', (value) => {
    expect(safeReturnTo(value)).toBe(value);
  });
});

describe('whatever it returns stays on the origin when a browser follows it', () => {
  const samples = [
    '//evil.example',
    '/\\evil.example',
    '/%09/evil.example',
    'https:evil.example',
    '/%2F/evil.example',
    '/app/page?x=1',
    '/a/b?next=//evil.example',
    '/./evil.example',
    '/.//evil.example',
    '/%2e%2e/%2e%2e/evil.example',
    '/x/../../evil.example',
  ];
  it.each(samples)('%j', (value) => {
    const out = safeReturnTo(value);
    expect(out.startsWith('/')).toBe(true);
    const target = browserTarget(out);
    expect(target.origin).toBe(ORIGIN);
    // Browsers also strip tabs/newlines and read '\' as '/': none of those survive.
    expect(out).not.toMatch(/[\t\n\r\\]/);
  });
});
