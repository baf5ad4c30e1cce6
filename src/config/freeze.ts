// Deep freeze for plain data (parsed config, compiled settings): plain objects and arrays, recursively.
// Anything else (Map, Set, class instances such as pools, KeyObjects, functions) is left as it is: those
// hold live state or cannot be frozen meaningfully.

function isPlain(value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return true;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Freezes `value` and every plain object or array under it; returns it. */
export function freezeData<T>(value: T): T {
  if (!isPlain(value) || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const key of Object.keys(value)) freezeData((value as Record<string, unknown>)[key]);
  return value;
}
