// Minimal RFC 6265 cookie handling for the gateway's own cookies (session and login transactions).

/** All cookies from every Cookie header: name → first value. */
export function parseCookies(raw: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'cookie') continue;
    for (const part of (raw[i + 1] as string).split(';')) {
      const eq = part.indexOf('=');
      if (eq <= 0) continue;
      const name = part.slice(0, eq).trim();
      if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
    }
  }
  return out;
}

/**
 * A `__Host-` cookie: Secure, Path=/, no Domain; HttpOnly and SameSite=Lax always. Max-Age rounds up: a
 * session with 0.9 s left must not be deleted at once (Max-Age=0) by the browser.
 */
export function hostCookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${Math.max(1, Math.ceil(maxAgeSeconds))}`;
}

export function clearCookie(name: string): string {
  return `${name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`;
}

/** Whether `cookie` is one of the extra chunks (`<name>.1`, `<name>.2`) of a split session cookie `name`. */
export function isChunkName(cookie: string, name: string): boolean {
  return cookie.length === name.length + 2 && cookie.startsWith(name) && cookie[name.length] === '.' && /^[1-9]$/.test(cookie[name.length + 1] as string);
}

/** Whether a cookie name is the gateway's: the session cookie (or one of its chunks) or a login transaction. */
export function isGatewayCookie(name: string, sessionCookie: string): boolean {
  return name === sessionCookie || isChunkName(name, sessionCookie) || name.startsWith(`${sessionCookie}-tx-`);
}

/**
 * Removes the gateway's cookies (the session cookie, its chunks and its `-tx-` login transactions, by exact name)
 * from Cookie headers before forwarding upstream; the app's own cookies pass, even when their names
 * merely start with the session cookie's name.
 */
export function stripCookies(headers: string[], sessionCookie: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'cookie') continue;
    const kept = (headers[i + 1] as string)
      .split(';')
      .filter((p) => {
        const eq = p.indexOf('=');
        return !isGatewayCookie((eq < 0 ? p : p.slice(0, eq)).trim(), sessionCookie);
      })
      .map((p) => p.trim())
      .filter(Boolean);
    headers[i + 1] = kept.join('; ');
  }
  // Drop Cookie headers that became empty.
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    if ((headers[r] as string).toLowerCase() === 'cookie' && headers[r + 1] === '') continue;
    headers[w++] = headers[r] as string;
    headers[w++] = headers[r + 1] as string;
  }
  headers.length = w;
}
