// Suites that need something the machine may lack (Chromium, a Debian app, Redis). With CI=true a missing
// dependency is one failing test that says how .ci/run installs it, never a skipped suite; only on a developer
// machine (CI unset) is the suite skipped, with a warning. This is the one place a suite may be skipped.
import { describe, it } from 'vitest';
import { IN_CI } from './redis.ts';

/** `missing`: undefined when everything is there, else what is missing and how to get it. */
export function describeNeeding(title: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) return void describe(title, body);
  if (IN_CI) {
    return void describe(title, () => {
      it('has what it needs', () => {
        throw new Error(`CI=true and ${missing}`);
      });
    });
  }
  console.warn(`${title}: skipped, ${missing} (with CI=true this fails instead)`);
  describe.skip(title, body);
}
