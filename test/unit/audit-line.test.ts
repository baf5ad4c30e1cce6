// The hand-built decision line: valid JSON whatever the strings hold, pino's field layout, no repeated
// keys when a caller's field replaces a fixed one, and credential-named keys never carry their value.
import { describe, expect, it } from 'vitest';
import { bindingsPrefix, isoClock, jsonString, LineBuilder } from '../../src/audit/line.ts';

const HOSTILE = ['plain', 'quote " and \\\\ backslash', 'new\nline\r\t', '\u0000\u001f\u007f', 'é日本🙂', '\ud800 lone', 'end\udfff', '</script>', ''];

describe('jsonString', () => {
  it.each(HOSTILE)('round-trips %j exactly as JSON.stringify would', (s) => {
    expect(jsonString(s)).toBe(JSON.stringify(s));
    expect(JSON.parse(jsonString(s))).toBe(s);
  });
});

describe('LineBuilder', () => {
  const b = new LineBuilder(bindingsPrefix({ service: 'zt-gateway', audit: true }));

  it('writes pino\'s layout and leaves undefined fields out', () => {
    const line = b.open('2026-12-01T00:00:00.000Z').raw('msg', '"decision"').str('path', '/a"b\n').str('subject', undefined).value('reasons', [{ rule: 'r' }]).raw('status', '200').close();
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(Object.keys(JSON.parse(line))).toEqual(['level', 'time', 'service', 'audit', 'msg', 'path', 'reasons', 'status']);
    expect(JSON.parse(line)).toEqual({ level: 'info', time: '2026-12-01T00:00:00.000Z', service: 'zt-gateway', audit: true, msg: 'decision', path: '/a"b\n', reasons: [{ rule: 'r' }], status: 200 });
  });

  it('lets a caller field replace a fixed one without repeating the key', () => {
    const extra = { decision: 'admin', action: 'suspend' };
    const line = b.open('t', extra).raw('decision', '"refused"').str('route', 'x').fields(extra).close();
    expect(line.match(/"decision"/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ decision: 'admin', action: 'suspend', route: 'x' });
  });

  it('escapes caller keys and never writes the value of a credential-named key', () => {
    const line = b.open('t').fields({ 'we"ird\nkey': 1, token: 'eyJsecret', password: { x: 1 }, cookie: 'c=1', fn: () => 1, skip: undefined }).close();
    expect(line).not.toContain('eyJsecret');
    expect(line).not.toContain('c=1');
    expect(JSON.parse(line)).toEqual({ level: 'info', time: 't', service: 'zt-gateway', audit: true, 'we"ird\nkey': 1, token: '[redacted]', password: '[redacted]', cookie: '[redacted]' });
  });
});

describe('isoClock', () => {
  it('gives the current time in ISO form', () => {
    const now = isoClock();
    const before = Date.now();
    const t = Date.parse(now());
    expect(t).toBeGreaterThanOrEqual(before - 1);
    expect(t).toBeLessThanOrEqual(Date.now());
    expect(now()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});
