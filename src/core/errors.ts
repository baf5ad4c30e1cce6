// The closed set of request errors. Every refusal the gateway answers maps to exactly one code here;
// codes are stable (operators alert on them), messages are not. Documented in docs/errors.md.

export const ERROR_CODES = {
  GW_ERR_BAD_REQUEST: { status: 400, title: 'Bad request' },
  GW_ERR_BAD_PATH: { status: 400, title: 'Request path refused' },
  GW_ERR_BAD_QUERY: { status: 400, title: 'Request query refused' },
  GW_ERR_BAD_HOST: { status: 400, title: 'Host header refused' },
  GW_ERR_AMBIGUOUS_REQUEST: { status: 400, title: 'Ambiguous request refused' },
  GW_ERR_BAD_METHOD: { status: 400, title: 'Request method refused' },
  GW_ERR_BAD_IDENTITY_VALUE: { status: 400, title: 'Identity value refused' },
  GW_ERR_LOGIN_HANDOFF: { status: 400, title: 'Login handoff refused' },
  GW_ERR_UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  GW_ERR_FORBIDDEN: { status: 403, title: 'Forbidden' },
  GW_ERR_SUSPENDED: { status: 403, title: 'Subject suspended' },
  GW_ERR_CROSS_SITE: { status: 403, title: 'Cross-site request refused' },
  GW_ERR_NO_ROUTE: { status: 404, title: 'Not found' },
  GW_ERR_VALIDATION: { status: 400, title: 'Request validation failed' },
  GW_ERR_REQUEST_TIMEOUT: { status: 408, title: 'Request timeout' },
  GW_ERR_MISDIRECTED: { status: 421, title: 'Misdirected request' },
  GW_ERR_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  GW_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  GW_ERR_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  GW_ERR_HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large' },
  GW_ERR_INTERNAL: { status: 500, title: 'Internal error' },
  GW_ERR_UPSTREAM_UNAVAILABLE: { status: 502, title: 'Upstream unavailable' },
  GW_ERR_SESSION_TOO_LARGE: { status: 502, title: 'Identity too large for a session' },
  GW_ERR_DEPENDENCY_UNAVAILABLE: { status: 503, title: 'Dependency unavailable' },
  GW_ERR_SHUTTING_DOWN: { status: 503, title: 'Shutting down' },
  GW_ERR_NO_HEALTHY_UPSTREAM: { status: 503, title: 'No healthy upstream' },
  GW_ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timeout' },
  GW_ERR_HTTP_VERSION: { status: 505, title: 'HTTP version not supported' },
} as const satisfies Record<string, { status: number; title: string }>;

export type GatewayErrorCode = keyof typeof ERROR_CODES;

const kGatewayError = Symbol.for('zt-gateway.error');

/** A refusal with a stable code. `detail` is safe to show to the client; `cause` is for logs only. */
export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly status: number;
  readonly detail: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Field-level problems (request validation): names and rules only, never the client's values. */
  readonly errors: readonly object[] | undefined;
  /** Extra problem fields for the client, e.g. { challenge: 'mfa' } on a risk step-up. */
  readonly extra: Readonly<Record<string, string>> | undefined;
  readonly [kGatewayError] = true;

  constructor(
    code: GatewayErrorCode,
    detail?: string,
    options?: {
      cause?: unknown;
      headers?: ReadonlyArray<readonly [string, string]>;
      errors?: readonly object[];
      extra?: Readonly<Record<string, string>>;
      /** Answered with this status instead of the code's (forward-auth: a proxy that understands only 401/403). */
      status?: number;
    },
  ) {
    super(detail ?? ERROR_CODES[code].title, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = options?.status ?? ERROR_CODES[code].status;
    this.detail = detail ?? ERROR_CODES[code].title;
    this.headers = options?.headers ?? [];
    this.errors = options?.errors;
    this.extra = options?.extra;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kGatewayError] === true;
  }
}

export interface ProblemResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
  code: GatewayErrorCode;
}

/**
 * The one function that turns any thrown value into an HTTP answer. Unknown errors become a generic
 * 500: their messages (which may name upstream hosts, file paths or secrets) never reach the client.
 */
export function toProblem(err: unknown, requestId: string): ProblemResponse {
  const gw = err instanceof GatewayError ? err : new GatewayError('GW_ERR_INTERNAL');
  const { title } = ERROR_CODES[gw.code];
  const body = JSON.stringify({
    ...gw.extra, // first: never overrides a standard field
    type: `urn:zt-gateway:error:${gw.code}`,
    title,
    status: gw.status,
    code: gw.code,
    detail: gw.detail,
    request_id: requestId,
    ...(gw.errors ? { errors: gw.errors } : {}),
  });
  const headers: Array<[string, string]> = [
    ['content-type', 'application/problem+json'],
    ['content-length', String(Buffer.byteLength(body))],
    ['cache-control', 'no-store'],
    ['x-content-type-options', 'nosniff'],
  ];
  for (const [name, value] of gw.headers) headers.push([name, value]);
  return { status: gw.status, headers, body, code: gw.code };
}
