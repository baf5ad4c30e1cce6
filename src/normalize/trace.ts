// W3C Trace Context (traceparent/tracestate), validated strictly when tracing.propagate is on: only the
// version-00 form, lower-case hex, no all-zero ids. An invalid traceparent is dropped together with its
// tracestate (the spec's rule); an oversized or non-printable tracestate is dropped on its own.
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);
const MAX_TRACESTATE = 512;
const PRINTABLE = /^[\x20-\x7e]*$/;

/** The trace id of a valid version-00 traceparent, else undefined. */
export function traceIdOf(values: readonly string[]): string | undefined {
  if (values.length !== 1) return undefined; // several traceparent headers: which one is the parent?
  const m = TRACEPARENT.exec(values[0] as string);
  if (m === null || m[1] === ZERO_TRACE || m[2] === ZERO_PARENT) return undefined;
  return m[1];
}

export function validTracestate(values: readonly string[]): boolean {
  let total = 0;
  for (const v of values) {
    total += v.length;
    if (total > MAX_TRACESTATE || !PRINTABLE.test(v)) return false;
  }
  return true;
}
