// canonicalHost without servers: lower-cased name, port kept only in the authority, trailing dot dropped,
// IPv6 literals unbracketed in `name`; every userinfo/port/encoding trick refused with GW_ERR_BAD_HOST.
import { describe, expect, it } from 'vitest';
import { canonicalHost } from '../../src/normalize/host.ts';
import { GatewayError } from '../../src/core/errors.ts';

function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    return err.code;
  }
}

describe('canonicalHost accepts and canonicalizes', () => {
  it.each([
    ['example.com', 'example.com', 'example.com'],
    ['Example.COM', 'example.com', 'example.com'],
    ['EXAMPLE.COM:8443', 'example.com', 'example.com:8443'],
    ['example.com.', 'example.com', 'example.com'],
    ['Example.com.:8080', 'example.com', 'example.com:8080'],
    ['localhost', 'localhost', 'localhost'],
    ['127.0.0.1', '127.0.0.1', '127.0.0.1'],
    ['127.0.0.1:8080', '127.0.0.1', '127.0.0.1:8080'],
    ['a-b.c_d.example', 'a-b.c_d.example', 'a-b.c_d.example'],
    ['xn--caf-dma.example', 'xn--caf-dma.example', 'xn--caf-dma.example'],
    ['host:1', 'host', 'host:1'],
    ['host:65535', 'host', 'host:65535'],
    ['[::1]', '::1', '[::1]'],
    ['[::1]:8080', '::1', '[::1]:8080'],
    ['[2001:DB8::1]:443', '2001:db8::1', '[2001:db8::1]:443'],
    ['[::ffff:127.0.0.1]', '::ffff:127.0.0.1', '[::ffff:127.0.0.1]'],
  ])('%j → name %j, authority %j', (value, name, authority) => {
    expect(canonicalHost(value)).toEqual({ name, authority });
  });
});

describe('canonicalHost refuses (GW_ERR_BAD_HOST)', () => {
  it.each([
    // missing or empty
    ['missing', undefined],
    ['empty', ''],
    // userinfo
    ['userinfo a@b', 'a@b'],
    ['userinfo with our address', '127.0.0.1@evil.example'],
    ['userinfo with password', 'user:pass@example.com'],
    // ports
    ['port out of range', 'host:99999'],
    ['port 65536', 'host:65536'],
    ['port 0', 'host:0'],
    ['non-numeric port', 'host:abc'],
    ['empty port', 'host:'],
    ['signed port', 'host:+80'],
    ['negative port', 'host:-1'],
    ['two ports', 'host:80:80'],
    ['six-digit port', 'host:000080'],
    ['port only', ':80'],
    ['space in port', 'host: 80'],
    // name syntax
    ['leading dot', '.example.com'],
    ['empty label', 'example..com'],
    ['two trailing dots', 'example.com..'],
    ['only a dot', '.'],
    ['leading hyphen', '-example.com'],
    ['trailing hyphen label', 'example-.com'],
    ['space', 'evil example'],
    ['tab', 'evil\texample'],
    ['percent-encoding', 'evil%2eexample'],
    ['slash', 'evil.example/x'],
    ['backslash', 'evil.example\\x'],
    ['query', 'evil.example?x'],
    ['fragment', 'evil.example#x'],
    ['comma list', 'a.example,b.example'],
    ['non-ASCII', 'exämple.com'],
    ['fullwidth dot', 'evil\uff0eexample'],
    ['NUL', 'example.com\x00.evil'],
    ['too long', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.e`],
    // IPv6 literals
    ['unterminated IPv6', '[::1'],
    ['junk after IPv6', '[::1]x'],
    ['IPv6 empty port', '[::1]:'],
    ['IPv6 bad port', '[::1]:99999'],
    ['IPv6 zone id', '[fe80::1%25eth0]'],
    ['IPv6 raw zone id', '[fe80::1%eth0]'],
    ['not an IPv6 address', '[evil.example]'],
    ['unbracketed IPv6', '::1'],
    ['IPv6 with userinfo', 'a@[::1]'],
    ['empty brackets', '[]'],
  ])('%s: %j', (_label, value) => {
    expect(outcome(() => canonicalHost(value))).toBe('GW_ERR_BAD_HOST');
  });
});
