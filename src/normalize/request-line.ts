// The request line's method and target length: checked for plain requests and forward-auth alike.
import { GatewayError } from '../core/index.ts';

const METHOD = /^[A-Z]{1,32}$/;

/** The method of a request line (or a forward-auth X-Forwarded-Method): a token, never CONNECT. */
export function checkMethod(method: string): void {
  if (method === 'CONNECT') throw new GatewayError('GW_ERR_BAD_METHOD', 'CONNECT is not supported');
  if (!METHOD.test(method)) throw new GatewayError('GW_ERR_BAD_METHOD', 'invalid method');
}

export function checkTargetLength(target: string, max: number): void {
  if (target.length > max) throw new GatewayError('GW_ERR_HEADERS_TOO_LARGE', 'request target too long');
}
