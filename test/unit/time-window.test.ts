// Time-window conditions: days, hours and IANA time zones, including DST changes and windows past midnight.
import { describe, expect, it } from 'vitest';
import { compileTimeWindow, parseDays } from '../../src/authz/time.ts';

const at = (iso: string) => Date.parse(iso);

describe('office hours mon-fri 08:00-19:00 in Europe/Berlin', () => {
  const office = compileTimeWindow({ days: 'mon-fri', hours: '08:00-19:00', tz: 'Europe/Berlin' });
  it.each([
    // Winter (CET, UTC+1)
    ['Mon 07:59 CET', '2026-01-12T06:59:00Z', false],
    ['Mon 08:00 CET (start is inclusive)', '2026-01-12T07:00:00Z', true],
    ['Mon 18:59 CET', '2026-01-12T17:59:00Z', true],
    ['Mon 19:00 CET (end is exclusive)', '2026-01-12T18:00:00Z', false],
    ['Fri 12:00 CET', '2026-01-16T11:00:00Z', true],
    ['Sat 12:00 CET', '2026-01-17T11:00:00Z', false],
    ['Sun 12:00 CET', '2026-01-18T11:00:00Z', false],
    // Summer (CEST, UTC+2)
    ['Mon 07:59 CEST', '2026-07-13T05:59:00Z', false],
    ['Mon 08:00 CEST', '2026-07-13T06:00:00Z', true],
    ['Mon 18:59 CEST', '2026-07-13T16:59:00Z', true],
    ['Mon 19:00 CEST', '2026-07-13T17:00:00Z', false],
    // Spring forward (Sun 2026-03-29): a fixed UTC+1 offset would get both of these wrong.
    ['Mon after spring-forward, 08:30 CEST (06:30Z)', '2026-03-30T06:30:00Z', true],
    ['Mon after spring-forward, 19:30 CEST (17:30Z)', '2026-03-30T17:30:00Z', false],
    ['Fri before spring-forward, 08:30 CET (07:30Z)', '2026-03-27T07:30:00Z', true],
    ['Fri before spring-forward, 07:30 CET (06:30Z)', '2026-03-27T06:30:00Z', false],
    // Fall back (Sun 2026-10-25): a fixed UTC+2 offset would get both of these wrong.
    ['Mon after fall-back, 07:30 CET (06:30Z)', '2026-10-26T06:30:00Z', false],
    ['Mon after fall-back, 18:30 CET (17:30Z)', '2026-10-26T17:30:00Z', true],
    // The day is the day in Berlin, not in UTC.
    ['Fri 23:30Z is Sat 00:30 in Berlin', '2026-01-16T23:30:00Z', false],
    ['Sun 23:30Z is Mon 00:30 in Berlin (outside hours)', '2026-01-18T23:30:00Z', false],
  ])('%s', (_name, iso, want) => {
    expect(office(at(iso))).toBe(want);
  });

  it('uses the zone day for days-only windows', () => {
    const weekdays = compileTimeWindow({ days: 'mon-fri', tz: 'Europe/Berlin' });
    expect(weekdays(at('2026-01-16T23:30:00Z'))).toBe(false); // Fri UTC, Sat Berlin
    expect(weekdays(at('2026-01-18T23:30:00Z'))).toBe(true); // Sun UTC, Mon Berlin
    const utcWeekdays = compileTimeWindow({ days: 'mon-fri', tz: 'UTC' });
    expect(utcWeekdays(at('2026-01-16T23:30:00Z'))).toBe(true);
    expect(utcWeekdays(at('2026-01-18T23:30:00Z'))).toBe(false);
  });

  it('works in zones west of UTC too', () => {
    const ny = compileTimeWindow({ days: 'mon-fri', hours: '09:00-17:00', tz: 'America/New_York' });
    expect(ny(at('2026-01-12T14:00:00Z'))).toBe(true); // Mon 09:00 EST
    expect(ny(at('2026-01-12T13:59:00Z'))).toBe(false);
    expect(ny(at('2026-07-13T13:00:00Z'))).toBe(true); // Mon 09:00 EDT
    expect(ny(at('2026-01-13T01:00:00Z'))).toBe(false); // Mon 20:00 EST, Tue in UTC
  });
});

describe('windows that wrap past midnight', () => {
  const night = compileTimeWindow({ hours: '22:00-06:00', tz: 'UTC' });
  it.each([
    ['21:59', '2026-01-14T21:59:00Z', false],
    ['22:00', '2026-01-14T22:00:00Z', true],
    ['23:59', '2026-01-14T23:59:00Z', true],
    ['00:00', '2026-01-15T00:00:00Z', true],
    ['02:00', '2026-01-15T02:00:00Z', true],
    ['05:59', '2026-01-15T05:59:00Z', true],
    ['06:00', '2026-01-15T06:00:00Z', false],
    ['12:00', '2026-01-15T12:00:00Z', false],
  ])('22:00-06:00 at %s', (_name, iso, want) => {
    expect(night(at(iso))).toBe(want);
  });

  it('attributes the early hours to the day the window started', () => {
    const fridayNight = compileTimeWindow({ days: 'fri', hours: '22:00-06:00', tz: 'UTC' });
    expect(fridayNight(at('2026-01-16T23:00:00Z'))).toBe(true); // Fri 23:00
    expect(fridayNight(at('2026-01-17T02:00:00Z'))).toBe(true); // Sat 02:00 = Friday night
    expect(fridayNight(at('2026-01-16T02:00:00Z'))).toBe(false); // Fri 02:00 = Thursday night
    expect(fridayNight(at('2026-01-17T23:00:00Z'))).toBe(false); // Sat 23:00
    expect(fridayNight(at('2026-01-17T06:00:00Z'))).toBe(false); // Sat 06:00: ended
  });

  it('wraps in a time zone as well', () => {
    const berlinNight = compileTimeWindow({ hours: '22:00-06:00', tz: 'Europe/Berlin' });
    expect(berlinNight(at('2026-07-13T20:30:00Z'))).toBe(true); // 22:30 CEST
    expect(berlinNight(at('2026-07-13T19:30:00Z'))).toBe(false); // 21:30 CEST
    expect(berlinNight(at('2026-07-14T03:30:00Z'))).toBe(true); // 05:30 CEST
    expect(berlinNight(at('2026-07-14T04:30:00Z'))).toBe(false); // 06:30 CEST
  });

  it('accepts 24:00 as the end of the day', () => {
    const evening = compileTimeWindow({ hours: '18:00-24:00', tz: 'UTC' });
    expect(evening(at('2026-01-14T23:59:00Z'))).toBe(true);
    expect(evening(at('2026-01-15T00:00:00Z'))).toBe(false);
    expect(evening(at('2026-01-14T17:59:00Z'))).toBe(false);
  });
});

describe('days', () => {
  const name = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const days = (...specs: string[]) => [...parseDays(specs)].sort().map((d) => name[d]);

  it.each([
    [['mon-fri'], ['mon', 'tue', 'wed', 'thu', 'fri']],
    [['sat-sun'], ['sun', 'sat']],
    [['fri-mon'], ['sun', 'mon', 'fri', 'sat']],
    [['mon', 'wed', 'sat-sun'], ['sun', 'mon', 'wed', 'sat']],
    [['mon,thu'], ['mon', 'thu']],
    [['Mon-Tue'], ['mon', 'tue']],
    [['sun'], ['sun']],
  ])('%j → %j', (specs, want) => {
    expect(days(...specs)).toEqual(want);
  });

  it('weekend window sat-sun', () => {
    const weekend = compileTimeWindow({ days: 'sat-sun', tz: 'UTC' });
    expect(weekend(at('2026-01-17T00:00:00Z'))).toBe(true); // Sat
    expect(weekend(at('2026-01-18T23:59:00Z'))).toBe(true); // Sun
    expect(weekend(at('2026-01-19T00:00:00Z'))).toBe(false); // Mon
    expect(weekend(at('2026-01-16T23:59:00Z'))).toBe(false); // Fri
  });

  it('a list of days', () => {
    const some = compileTimeWindow({ days: ['mon', 'wed'], tz: 'UTC' });
    expect(some(at('2026-01-12T10:00:00Z'))).toBe(true);
    expect(some(at('2026-01-13T10:00:00Z'))).toBe(false);
    expect(some(at('2026-01-14T10:00:00Z'))).toBe(true);
  });
});

describe('refused at compile time', () => {
  it.each([
    [{ days: 'mon-fry', tz: 'UTC' }, /unknown day "fry"/],
    [{ days: 'monday', tz: 'UTC' }, /unknown day "monday"/],
    [{ days: ['mon', ''], tz: 'UTC' }, /invalid day range ""/],
    [{ days: 'mon-', tz: 'UTC' }, /unknown day ""/],
    [{ days: 'mon-wed-fri', tz: 'UTC' }, /invalid day range "mon-wed-fri"/],
    [{ tz: 'Mars/Olympus' }, /unknown time zone "Mars\/Olympus"/],
    [{ tz: 'Europe/Berlln' }, /unknown time zone "Europe\/Berlln"/],
    [{ hours: '25:00-26:00', tz: 'UTC' }, /invalid time "25:00"/],
    [{ hours: '08:60-09:00', tz: 'UTC' }, /invalid time "08:60"/],
    [{ hours: '24:30-06:00', tz: 'UTC' }, /invalid time "24:30"/],
    [{ hours: '08:00-08:00', tz: 'UTC' }, /empty hours range/],
  ])('%j', (spec, message) => {
    expect(() => compileTimeWindow(spec)).toThrow(TypeError);
    expect(() => compileTimeWindow(spec)).toThrow(message);
  });
});
