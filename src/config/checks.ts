// Field-level checks shared by the schema (so one `validate` run reports every bad value at once, next to
// the other schema errors) and by compile (which turns the same values into runtime objects).
// Only node: built-ins and src/core/ (syntax shared with the steps): config/ imports no step folder.
import { parseCidr, canonicalPath, parseTemplate } from '../core/index.ts';

/** An identity field reference as written in config: subject, email, groups or claims.<path>. */
export const IDENTITY_FIELD = /^(subject|email|groups|claims(\.[^.\s]+)+)$/;

export const HOST_PATTERN = /^(\*\.)?[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*$/;

/** undefined when `h` is an exact host name or `*.example.com`; otherwise the operator-facing problem. */
export function hostPatternProblem(h: string): string | undefined {
  const lower = h.toLowerCase().replace(/\.$/, '');
  return HOST_PATTERN.test(lower) ? undefined : `invalid host pattern "${h}" (exact name or *.example.com)`;
}

/** undefined for an http(s) origin without credentials, path, query or fragment. Never echoes the URL. */
export function upstreamUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'invalid URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'upstream URL must be http:// or https://';
  if (url.username || url.password) return 'upstream URL must not contain credentials';
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    return 'upstream URL must be an origin (no path, query or fragment)';
  }
  return undefined;
}

/** undefined for an address or CIDR such as 10.0.0.0/8, ::1, fd00::/8. */
export function cidrProblem(entry: string): string | undefined {
  try {
    parseCidr(entry);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** undefined for a route path (`/prefix` or `=/exact`) that is already canonical enough to compile. */
export function routePathProblem(raw: string): string | undefined {
  const path = raw.startsWith('=') ? raw.slice(1) : raw;
  try {
    const canonical = canonicalPath(path);
    if (canonical.path !== canonical.matchPath) return 'invalid path: route paths may not contain ;parameters';
    parseTemplate(canonical.path);
    return undefined;
  } catch (err) {
    return `invalid path: ${(err as { detail?: string }).detail ?? (err as Error).message}`;
  }
}

// Headers clients and proxies send for their own purposes: an identity prefix covering one would have the
// normalize stage strip it from every request. Families (`content-`, `sec-`…) are refused in both directions.
const STANDARD_HEADERS = [
  'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'authorization', 'baggage',
  'cache-control', 'connection', 'content-disposition', 'content-encoding', 'content-language', 'content-length',
  'content-range', 'content-type', 'cookie', 'date', 'dnt', 'expect', 'forwarded', 'host', 'if-match',
  'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'keep-alive', 'max-forwards', 'origin',
  'pragma', 'priority', 'proxy-authorization', 'range', 'referer', 'te', 'trailer', 'traceparent', 'tracestate',
  'transfer-encoding', 'true-client-ip', 'upgrade', 'upgrade-insecure-requests', 'user-agent', 'via',
  'www-authenticate', 'x-api-key', 'x-client-ip', 'x-cluster-client-ip', 'x-correlation-id', 'x-csrf-token',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-http-method-override',
  'x-original-url', 'x-real-ip', 'x-request-id', 'x-requested-with', 'x-rewrite-url', 'x-xsrf-token',
];
const STANDARD_FAMILIES = ['accept-', 'access-control-', 'content-', 'if-', 'proxy-', 'sec-', 'x-forwarded-'];
const MIN_IDENTITY_PREFIX = 4;

/** undefined for an identity header prefix that covers no standard or reserved header name. */
export function identityPrefixProblem(prefix: string): string | undefined {
  const lower = prefix.toLowerCase();
  if (lower.length < MIN_IDENTITY_PREFIX) return `identity header prefix "${prefix}" is too short (at least ${MIN_IDENTITY_PREFIX} characters, e.g. X-ZT-)`;
  const family = STANDARD_FAMILIES.find((f) => lower.startsWith(f) || f.startsWith(lower));
  if (family !== undefined) return `identity header prefix "${prefix}" overlaps the standard ${family}* headers`;
  const name = STANDARD_HEADERS.find((h) => h.startsWith(lower));
  if (name !== undefined) return `identity header prefix "${prefix}" would strip the standard header ${name}`;
  return undefined;
}


/** A groups_filter include entry: a prefix, or /regex/ (optionally /regex/i) that must compile. */
export const GROUP_PATTERN_REGEX = /^\/(.+)\/(i?)$/s;

export function groupPatternProblem(value: string): string | undefined {
  const m = GROUP_PATTERN_REGEX.exec(value);
  if (m === null) return undefined;
  try {
    new RegExp(m[1] as string, m[2]);
    return undefined;
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
}
