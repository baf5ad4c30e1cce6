// Authorization header parsing (RFC 9110 §11.6.2): `<scheme> <token68>`, scheme case-insensitive.
import { GatewayError } from '../core/index.ts';

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The credentials after `scheme ` when the header uses that scheme; undefined when it uses another. */
export function credentialsFor(authorization: string | undefined, scheme: string): string | undefined {
  if (authorization === undefined) return undefined;
  const space = authorization.indexOf(' ');
  if (space !== scheme.length || authorization.slice(0, space).toLowerCase() !== scheme.toLowerCase()) return undefined;
  return authorization.slice(space + 1).trim();
}

export function unauthenticated(challenge: string, description: string, error = 'invalid_token'): GatewayError {
  const safe = description.replace(/["\\]/g, '');
  return new GatewayError('GW_ERR_UNAUTHENTICATED', description, {
    headers: [['www-authenticate', `${challenge}, error="${error}", error_description="${safe}"`]],
  });
}

export function isToken68(value: string): boolean {
  return TOKEN68.test(value);
}
