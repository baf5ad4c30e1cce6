// Host header → canonical host name (lower-case, no port, no trailing dot). Tricks are refused.
import { isIPv6 } from 'node:net';
import { GatewayError, type CanonicalHost } from '../core/index.ts';


const REG_NAME = /^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*\.?$/;

function bad(detail: string): GatewayError {
  return new GatewayError('GW_ERR_BAD_HOST', detail);
}

export function canonicalHost(value: string | undefined): CanonicalHost {
  if (value === undefined || value === '') throw bad('a Host header is required');
  if (value.length > 255) throw bad('Host header too long');
  const lower = value.toLowerCase();
  let name: string;
  let port = '';
  if (lower.charCodeAt(0) === 91 /* [ */) {
    const close = lower.indexOf(']');
    if (close < 0) throw bad('unterminated IPv6 literal in Host');
    name = lower.slice(1, close);
    if (!isIPv6(name) || name.includes('%')) throw bad('invalid IPv6 literal in Host');
    const rest = lower.slice(close + 1);
    if (rest !== '') {
      if (rest.charCodeAt(0) !== 58) throw bad('unexpected characters after IPv6 literal in Host');
      port = rest.slice(1);
      checkPort(port);
    }
    return { name, authority: port ? `[${name}]:${port}` : `[${name}]` };
  }
  const colon = lower.indexOf(':');
  if (colon >= 0) {
    name = lower.slice(0, colon);
    port = lower.slice(colon + 1);
    checkPort(port);
  } else name = lower;
  // Userinfo ('@'), percent-escapes, spaces and every other trick fail this pattern.
  if (!REG_NAME.test(name)) throw bad('Host is not a valid host name');
  if (name.endsWith('.')) name = name.slice(0, -1);
  return { name, authority: port ? `${name}:${port}` : name };
}

function checkPort(port: string): void {
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535 || Number(port) === 0) throw bad('invalid port in Host');
}
