// canonicalTarget / canonicalPath / checkQuery without servers: the same tables as test/attacks/path.test.ts,
// plus bytes that Node's HTTP parser never lets through (so only this layer can prove they are refused).
import { describe, expect, it } from 'vitest';
import { canonicalPath, canonicalTarget, checkQuery } from '../../src/normalize/target.ts';
import { GatewayError } from '../../src/core/errors.ts';

/** The GatewayError code `fn` throws, or 'OK' when it returns. Any other throw fails the test. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    return err.code;
  }
}

describe('canonicalPath refuses ambiguous paths (GW_ERR_BAD_PATH)', () => {
  it.each([
    // dot segments
    '/a/../admin', '/a/./admin', '/a/..', '/a/.', '/..', '/.',
    '/a/%2e%2e/admin', '/a/%2E%2E/admin', '/a/%2E./admin', '/a/.%2e/admin', '/a/%2e/admin', '/%2e',
    '/a/..;x/admin', '/a/.;x/admin', '/a/..;/admin', '/a/%2e%2e;x/admin', '/a/..%3b/admin', '/a/..%3Bx/admin', '/a/.%3b',
    // separators other than '/'
    '/a%2Fadmin', '/a%2fadmin', '/a%5Cadmin', '/a%5cadmin', '/a\\admin', '/\\evil.example', '/a/..\\admin',
    // empty segments
    '/a//admin', '//evil.example/x', '//', '/a//', '///',
    // raw and encoded control characters, space, DEL
    '/a%00.html', '/a%0ab', '/a%0Db', '/%09/admin', '/a%7fb', '/a%1bb',
    '/a\x00b', '/a\x01b', '/a\tb', '/a\nb', '/a\rb', '/a b', '/a\x7fb',
    // raw non-ASCII must be percent-encoded
    '/café', '/a\u2215b', '/a\uff0fb',
    // invalid percent-encoding, %u
    '/a%zz', '/a%2', '/a%', '/a%g0b', '/a%0g', '/%u002e%u002e/admin', '/a%u2215b', '/a%%32%65',
    // not UTF-8 after decoding: overlong, lone, truncated, surrogates, out of range
    '/%c0%ae%c0%ae/admin', '/a%c0%afadmin', '/%e0%80%ae%e0%80%ae/admin', '/%f0%80%80%ae/admin', '/%c1%9c',
    '/a%ffb', '/a%80b', '/caf%c3', '/a%ed%a0%80b', '/a%f4%90%80%80b',
    // look-alike separators and dots
    '/a%ef%bc%8fadmin', '/a%ef%bc%bcadmin', '/%ef%bc%8e%ef%bc%8e/admin', '/a%e2%88%95admin', '/a%e2%88%96admin',
    '/%e2%80%a4%e2%80%a4/admin', '/%e2%80%a5/admin', '/%ef%b9%92%ef%b9%92/admin', '/%ef%b9%92/admin', '/a%ef%b9%a8admin',
    '/.%ef%bc%8e/admin',
    // compatibility look-alikes: NFKC folds them into ASCII (`/ａdmin` is `/admin` to an NFKC backend)
    '/%EF%BD%81dmin', '/adm%E2%85%B0n', '/%EF%AC%81le', '/wait%E2%80%A6', '/x%C2%B2', '/%C2%AAdmin', '/%E2%84%AAelvin',
    '/admin%C5%BF', '/a%CD%BEb', '/a%C2%A0b', '/%EF%BC%A1PI', '/v%EF%BC%91', '/caf%C3%A9/%EF%BD%81',
    // fragments
    '/a#x', '/a/#/../admin', '/#',
    // segments of only parameters
    '/;x/admin', '/;/admin', '/%3bx/admin', '/a/;x', '/a/;',
    // not origin-form
    '', 'a/b', '*', 'http://evil.example/',
  ])('%j', (path) => {
    expect(outcome(() => canonicalPath(path))).toBe('GW_ERR_BAD_PATH');
  });
});

describe('canonicalPath keeps legitimate paths (canonical form)', () => {
  it.each([
    ['/', '/', '/'],
    ['/a/', '/a/', '/a/'],
    ['/..dir/dir..5/.well', '/..dir/dir..5/.well', '/..dir/dir..5/.well'],
    ['/a/b.c/..d./e..', '/a/b.c/..d./e..', '/a/b.c/..d./e..'],
    ['/...', '/...', '/...'],
    ['/a;jsessionid=1/b', '/a;jsessionid=1/b', '/a/b'],
    ['/a/b;v=1.2;x', '/a/b;v=1.2;x', '/a/b'],
    ['/a;p/..x', '/a;p/..x', '/a/..x'],
    ['/caf%C3%A9', '/caf%C3%A9', '/caf%C3%A9'],
    ['/caf%c3%a9', '/caf%C3%A9', '/caf%C3%A9'],
    ['/%61pi', '/api', '/api'],
    ['/%7euser/%41%2D%5F%2E%30', '/~user/A-_.0', '/~user/A-_.0'],
    ['/a%3Fb%23c%25d', '/a%3Fb%23c%25d', '/a%3Fb%23c%25d'],
    ['/a%3fb', '/a%3Fb', '/a%3Fb'],
    ['/a%20b', '/a%20b', '/a%20b'],
    ['/a%3Bb;c=d/e', '/a%3Bb;c=d/e', '/a%3Bb/e'],
    // ordinary letters, scripts and combining marks fold to non-ASCII under NFKC: allowed
    ['/%C3%BCber/stra%C3%9Fe', '/%C3%BCber/stra%C3%9Fe', '/%C3%BCber/stra%C3%9Fe'],
    ['/%E6%97%A5%E6%9C%AC', '/%E6%97%A5%E6%9C%AC', '/%E6%97%A5%E6%9C%AC'],
    ['/cafe%CC%81', '/cafe%CC%81', '/cafe%CC%81'],
    ['/%D0%BC%D0%B8%D1%80', '/%D0%BC%D0%B8%D1%80', '/%D0%BC%D0%B8%D1%80'],
    ['/%F0%9F%98%80', '/%F0%9F%98%80', '/%F0%9F%98%80'],
    ["/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b"],
  ])('%j → path %j, matchPath %j', (raw, path, matchPath) => {
    expect(canonicalPath(raw)).toEqual({ path, matchPath });
  });

  it('is idempotent: the canonical path canonicalizes to itself', () => {
    for (const raw of ['/%61pi/caf%c3%a9;x=1/%7e', '/a%3fb/e%cc%81']) {
      const once = canonicalPath(raw).path;
      expect(canonicalPath(once).path).toBe(once);
    }
  });
});

describe('checkQuery', () => {
  it.each(['?next=../x', '?name=a%2Fb', '?a=%0A', '?x=1&y=2', '?', '?a=%c3%a9', '?r=//evil&s=\\x', '?a=%2B%7e'])(
    'accepts %j',
    (query) => {
      expect(outcome(() => checkQuery(query))).toBe('OK');
    },
  );

  it.each(['?a=%zz', '?a=%2', '?a=%', '?a=%u0041', '?a=1#x', '?a=\x00', '?a=\x01', '?a=\tb', '?a=\nb', '?a=b c', '?a=\x7f', '?a=é'])(
    'refuses %j with GW_ERR_BAD_QUERY',
    (query) => {
      expect(outcome(() => checkQuery(query))).toBe('GW_ERR_BAD_QUERY');
    },
  );
});

describe('canonicalTarget', () => {
  it.each([
    ['/r?next=../x', '/r', '?next=../x'],
    ['/r?name=a%2Fb', '/r', '?name=a%2Fb'],
    ['/r?a=%0A', '/r', '?a=%0A'],
    ['/r?x=1&y=2', '/r', '?x=1&y=2'],
    ['/%61pi/x?q=%61', '/api/x', '?q=%61'],
    ['/a?b?c', '/a', '?b?c'],
    ['/a', '/a', ''],
  ])('%j → path %j + query %j (query forwarded as received)', (target, path, query) => {
    const t = canonicalTarget(target);
    expect(t.path).toBe(path);
    expect(t.query).toBe(query);
  });

  it('cuts path parameters only from matchPath', () => {
    expect(canonicalTarget('/a;jsessionid=1/b?c=;d')).toEqual({ path: '/a;jsessionid=1/b', matchPath: '/a/b', query: '?c=;d' });
  });

  it.each([
    ['/a/../b?x=1', 'GW_ERR_BAD_PATH'],
    ['/a%2fb?x=1', 'GW_ERR_BAD_PATH'],
    ['/a/..?x=1', 'GW_ERR_BAD_PATH'],
    ['/a#?x', 'GW_ERR_BAD_PATH'],
    ['/a?x=%zz', 'GW_ERR_BAD_QUERY'],
    ['/a?x#y', 'GW_ERR_BAD_QUERY'],
  ])('%j → %s', (target, code) => {
    expect(outcome(() => canonicalTarget(target))).toBe(code);
  });
});
