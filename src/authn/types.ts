import type { Socket } from 'node:net';
import type { RequestContext, Identity } from '../core/index.ts';

export interface AuthRequest {
  readonly authorization: string | undefined;
  /** Raw header list (for providers that read a configured header). */
  readonly rawHeaders: readonly string[];
  readonly socket: Socket;
  /** The request's context (providers that set response cookies use it). */
  readonly ctx?: RequestContext;
}

/**
 * One identity provider, built once from config. `authenticate` returns undefined when the request carries
 * no credentials of its kind ("not mine": the route tries the next provider), an Identity when they are
 * valid, and throws a GatewayError (401, or 503 when a dependency is down) when they are present but bad.
 */
export interface Authenticator {
  readonly name: string;
  readonly type: 'jwt' | 'mtls' | 'api_key' | 'oidc';
  /** The WWW-Authenticate challenge for a request without credentials. */
  readonly challenge: string;
  /** Lower-case request headers that carry this provider's credentials (never forwarded upstream). */
  readonly consumes: readonly string[];
  /** jwt providers: the configured issuer, used to pick among several Bearer providers on one route. */
  readonly issuer?: string;
  authenticate(req: AuthRequest): Identity | undefined | Promise<Identity | undefined>;
}

export const REALM = 'zt-gateway';
