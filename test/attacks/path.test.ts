// Hostile request paths and queries against a real gateway and upstream (DESIGN.md §4): every ambiguous path
// is refused with 400 GW_ERR_BAD_PATH before anything is forwarded, and legitimate look-alikes still reach
// the upstream byte for byte. Paths go out verbatim over a raw socket (undici's URL parser would resolve
// `..` and `%2e%2e` before sending), legitimate ones through undici.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRefused, expectStillServing, get, raw, receivedOnce } from '../helpers/attack.ts';
import { publicConfig, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway(publicConfig(upstream.url));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('paths refused with 400 GW_ERR_BAD_PATH, nothing forwarded', () => {
  it.each([
    // dot segments, raw and encoded, also with path parameters
    ['raw ..', '/a/../admin'],
    ['raw .', '/a/./admin'],
    ['trailing ..', '/a/..'],
    ['trailing .', '/a/.'],
    ['only ..', '/..'],
    ['%2e%2e', '/a/%2e%2e/admin'],
    ['%2E%2E', '/a/%2E%2E/admin'],
    ['%2E.', '/a/%2E./admin'],
    ['.%2e', '/a/.%2e/admin'],
    ['%2e', '/a/%2e/admin'],
    ['..;x', '/a/..;x/admin'],
    ['.;x', '/a/.;x/admin'],
    ['..;', '/a/..;/admin'],
    ['%2e%2e;x', '/a/%2e%2e;x/admin'],
    ['..%3b', '/a/..%3b/admin'],
    ['..%3Bx', '/a/..%3Bx/admin'],
    // separators that are not '/'
    ['%2F', '/a%2Fadmin'],
    ['%2f', '/a%2fadmin'],
    ['%2f..', '/a/%2f../admin'],
    ['%5C', '/a%5Cadmin'],
    ['%5c', '/a%5cadmin'],
    ['backslash', '/a\\admin'],
    ['backslash dot-dot', '/a/..\\admin'],
    ['backslash leading', '/\\evil.example'],
    // empty segments
    ['//', '/a//admin'],
    ['leading //x', '//evil.example/x'],
    ['trailing //', '/a//'],
    ['only //', '//'],
    // encoded control characters
    ['NUL %00', '/a%00.html'],
    ['LF %0a', '/a%0aSet-Cookie:x'],
    ['CR %0d', '/a%0db'],
    ['CRLF %0D%0A', '/a%0D%0Ab'],
    ['TAB %09', '/%09/admin'],
    ['DEL %7f', '/a%7fb'],
    // invalid percent-encoding and %u escapes
    ['%zz', '/a%zz'],
    ['%2 (truncated)', '/a%2'],
    ['% at end', '/a%'],
    ['%g0', '/a%g0b'],
    ['%u002e', '/%u002e%u002e/admin'],
    ['%u2215', '/a%u2215b'],
    // percent-decoded bytes that are not UTF-8 (overlong forms, lone bytes)
    ['overlong %c0%ae', '/%c0%ae%c0%ae/admin'],
    ['overlong %c0%af', '/a%c0%afadmin'],
    ['overlong %e0%80%ae', '/%e0%80%ae%e0%80%ae/admin'],
    ['overlong %f0%80%80%ae', '/%f0%80%80%ae/admin'],
    ['invalid %ff', '/a%ffb'],
    ['lone continuation %80', '/a%80b'],
    ['truncated sequence %c3', '/caf%c3'],
    ['surrogate %ed%a0%80', '/a%ed%a0%80b'],
    // look-alike separators and dots (best-fit / NFKC folding)
    ['fullwidth solidus %ef%bc%8f', '/a%ef%bc%8fadmin'],
    ['fullwidth reverse solidus %ef%bc%bc', '/a%ef%bc%bcadmin'],
    ['fullwidth full stops', '/%ef%bc%8e%ef%bc%8e/admin'],
    ['division slash %e2%88%95', '/a%e2%88%95admin'],
    ['one dot leaders', '/%e2%80%a4%e2%80%a4/admin'],
    ['two dot leader (NFKC ..)', '/%e2%80%a5/admin'],
    ['small full stops (NFKC ..)', '/%ef%b9%92%ef%b9%92/admin'],
    ['small reverse solidus (NFKC \\)', '/a%ef%b9%a8admin'],
    // compatibility look-alike letters: an NFKC-applying backend routes them as ASCII
    ['fullwidth a (NFKC /admin)', '/%EF%BD%81dmin'],
    ['roman numeral one (NFKC /admin)', '/adm%E2%85%B0n'],
    ['ligature fi (NFKC file)', '/%EF%AC%81le'],
    ['superscript two', '/v%C2%B2'],
    ['Kelvin sign (NFKC K)', '/%E2%84%AAey'],
    ['long s (NFKC s)', '/admin%C5%BF'],
    ['Greek question mark (NFKC ;)', '/a%CD%BEx/admin'],
    ['ellipsis (NFKC ...)', '/wait%E2%80%A6'],
    // fragments are never sent by clients
    ['fragment #x', '/a#x'],
    ['fragment hiding ..', '/a/#/../admin'],
    // a segment of only parameters is `//` to Tomcat
    ['/;x/admin', '/;x/admin'],
    ['/;/admin', '/;/admin'],
    ['/%3bx/admin', '/%3bx/admin'],
    ['/a/;x', '/a/;x'],
  ])('%s: %s', async (_label, target) => {
    await expectRefused(gw, upstream, () => raw(gw, target), 400, 'GW_ERR_BAD_PATH');
  });

  it('refuses the same ambiguity in an absolute-form target', async () => {
    await expectRefused(gw, upstream, () => raw(gw, `http://127.0.0.1:${gw.port}/a/%2e%2e/admin`), 400, 'GW_ERR_BAD_PATH');
  });

  it('keeps serving after the path attacks', async () => {
    await expectStillServing(gw, upstream);
  });
});

describe('raw control and non-ASCII bytes in the path', () => {
  // Node's HTTP parser (llhttp, strict mode) refuses these bytes in the request line before the gateway
  // sees the request, so the answer is the listener's parser refusal GW_ERR_BAD_REQUEST, not
  // GW_ERR_BAD_PATH. canonicalPath refuses the same bytes itself (test/unit/target.test.ts).
  it.each([
    ['NUL', '/a\x00b'],
    ['SOH', '/a\x01b'],
    ['TAB', '/a\tb'],
    ['VT', '/a\x0bb'],
    ['ESC', '/a\x1bb'],
    ['DEL', '/a\x7fb'],
    ['raw UTF-8 é', '/caf\xc3\xa9'],
    ['raw 0xff', '/a\xffb'],
  ])('%s', async (_label, target) => {
    await expectRefused(gw, upstream, () => raw(gw, target), 400, 'GW_ERR_BAD_REQUEST');
    await expectStillServing(gw, upstream);
  });
});

describe('legitimate paths are forwarded unchanged (canonical form)', () => {
  it.each([
    ['names that contain dots', '/..dir/dir..5/.well', '/..dir/dir..5/.well'],
    ['dots inside names', '/a/b.c/..d./e..', '/a/b.c/..d./e..'],
    ['path parameters', '/a;jsessionid=1/b', '/a;jsessionid=1/b'],
    ['valid UTF-8 kept encoded', '/caf%C3%A9', '/caf%C3%A9'],
    ['lower-case hex upper-cased', '/lower/caf%c3%a9', '/lower/caf%C3%A9'],
    ['unreserved decoded', '/%61pi', '/api'],
    ['unreserved ~ decoded', '/%7euser/%41', '/~user/A'],
    ['reserved stays encoded', '/a%3Fb%23c%25d', '/a%3Fb%23c%25d'],
    ['encoded space', '/a%20b', '/a%20b'],
    ['ü and ß (NFKC leaves them)', '/%C3%BCber/stra%C3%9Fe', '/%C3%BCber/stra%C3%9Fe'],
    ['CJK', '/%E6%97%A5%E6%9C%AC', '/%E6%97%A5%E6%9C%AC'],
    ['decomposed e + combining acute', '/cafe%CC%81', '/cafe%CC%81'],
    ['root', '/', '/'],
    ['trailing slash', '/a/', '/a/'],
    ['query with ../', '/r?next=../x', '/r?next=../x'],
    ['query with %2F', '/r?name=a%2Fb', '/r?name=a%2Fb'],
    ['query with encoded LF', '/r?a=%0A', '/r?a=%0A'],
    ['query with two params', '/r?x=1&y=2', '/r?x=1&y=2'],
    ['query kept byte for byte', '/r?q=%2e%2e%2f&r=//evil&s=%c3%a9', '/r?q=%2e%2e%2f&r=//evil&s=%c3%a9'],
  ])('%s: %s → %s', async (_label, sent, expected) => {
    const res = await get(`${gw.url}${sent}`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).url).toBe(expected);
    receivedOnce(upstream, expected);
  });

  it('forwards a target of dots-in-names sent verbatim over a raw socket too', async () => {
    const res = await raw(gw, '/raw/..x/x../.x?y=..');
    expect(res.status).toBe(200);
    receivedOnce(upstream, '/raw/..x/x../.x?y=..');
  });
});

describe('queries refused with 400, nothing forwarded', () => {
  it.each([
    ['%zz', '/q?a=%zz'],
    ['%2 truncated', '/q?a=%2'],
    ['% at end', '/q?a=%'],
    ['%u0041', '/q?a=%u0041'],
    ['fragment', '/q?a=1#x'],
  ])('GW_ERR_BAD_QUERY for %s: %s', async (_label, target) => {
    await expectRefused(gw, upstream, () => raw(gw, target), 400, 'GW_ERR_BAD_QUERY');
  });

  // Raw control characters, DEL and non-ASCII bytes in the query never reach checkQuery: Node's parser
  // refuses the request line first, and the listener answers GW_ERR_BAD_REQUEST (a raw space simply ends
  // the target, leaving an invalid HTTP version, which the parser refuses the same way).
  it.each([
    ['NUL', '/q?a=\x00'],
    ['SOH', '/q?a=\x01'],
    ['TAB', '/q?a=\tb'],
    ['DEL', '/q?a=\x7f'],
    ['raw 0xe9', '/q?a=\xe9'],
    ['space', '/q?a=b c'],
  ])('GW_ERR_BAD_REQUEST (parser) for raw %s in the query', async (_label, target) => {
    await expectRefused(gw, upstream, () => raw(gw, target), 400, 'GW_ERR_BAD_REQUEST');
    await expectStillServing(gw, upstream);
  });
});
