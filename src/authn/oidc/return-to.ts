// Where a login may return: only a path on this origin. Anything a browser could read as another origin,
// or that hides one behind encoding or whitespace, becomes '/'.
export function safeReturnTo(value: string | undefined): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return '/';
  if (value[0] !== '/' || value[1] === '/' || value[1] === '\\') return '/';
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    return '/';
  }
  // Browsers strip tabs and newlines in URLs, and treat '\' as '/': `/%09/evil`, `/\evil`, `/%2F/evil`.
  if (/[\x00-\x1f\x7f\\]/.test(decoded) || decoded.startsWith('//')) return '/';
  // Only printable ASCII as received on the wire (anything else is percent-encoded by browsers, and would
  // not fit in a Location header).
  if (/[^\x21-\x7e]|\\/.test(value)) return '/';
  return value;
}
