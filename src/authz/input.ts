import type { Identity, Reason } from '../core/index.ts';
import type { Device } from './devices.ts';
import type { QueryValues } from '../normalize/index.ts';

/** Active just-in-time grants (the access state); absent: nobody holds a grant. */
export interface GrantLookup {
  hasGrant(provider: string, subject: string, grant: string, nowMs: number): boolean;
}

/** Everything a policy may look at, for one request. */
export interface PolicyInput {
  readonly identity: Identity | null;
  readonly method: string;
  /** Canonical match path (what the route matched). */
  readonly path: string;
  readonly clientIp: string;
  readonly nowMs: number;
  /** The caller's device, resolved lazily (client certificate or trusted header). */
  readonly device: () => Device | undefined;
  readonly grants?: GrantLookup;
  /** Named path segments of the route, decoded once (resolved lazily). */
  readonly params?: () => Readonly<Record<string, string>>;
  /**
   * The decoded query filed under every spelling a backend may read (normalize parseQuerySpellings: split on
   * `&` and `;`, names folded); null when it is not valid UTF-8 percent-encoding (resolved lazily).
   */
  readonly query?: () => QueryValues | null;
  /** The request's risk score (0-1), when the route scores risk; undefined otherwise. */
  readonly risk: number | undefined;
}

/** One compiled rule condition: null when it holds, else why not (and which parameter failed). */
export type Condition = (input: PolicyInput) => Reason | { reason: Reason; param: string } | null;
