import { describe, expect, it } from 'vitest';
import { limitKey } from '../../src/normalize/cidr.ts';

describe('per-address limit keys', () => {
  it('IPv4 addresses count one by one', () => {
    expect(limitKey('203.0.113.7')).toBe('203.0.113.7');
    expect(limitKey('203.0.113.8')).toBe('203.0.113.8');
  });

  it('every address of one IPv6 /64 counts as one client, whatever its spelling', () => {
    const same = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0DB8:0001:0002:0:0:0:9', '2001:db8:1:2::a.b'.replace('a.b', '192.0.2.1')];
    for (const a of same) expect(limitKey(a), a).toBe('2001:db8:1:2::/64');
    expect(limitKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(limitKey('::1')).toBe('0:0:0:0::/64');
    expect(limitKey('fe80::')).toBe('fe80:0:0:0::/64');
    expect(limitKey('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(limitKey('1:2:3:4:5:6:7:8')).toBe('1:2:3:4::/64');
  });

  it('an IPv4-mapped address counts as its IPv4 address, however it is spelled (never one shared bucket)', () => {
    for (const a of ['::ffff:1.2.3.4', '::FFFF:1.2.3.4', '::ffff:102:304', '0:0:0:0:0:ffff:0102:0304', '::ffff:0:0102:0304'.replace(':0:', ':')]) {
      expect(limitKey(a), a).toBe('1.2.3.4');
    }
    expect(limitKey('::ffff:5.6.7.8')).toBe('5.6.7.8');
    expect(limitKey('::1:2:3:4')).toBe('0:0:0:0::/64'); // not mapped: ::/64
  });

  it('anything that is not an IP address is kept as it is (never throws)', () => {
    expect(limitKey('')).toBe('');
    expect(limitKey('not-an-ip')).toBe('not-an-ip');
  });
});
