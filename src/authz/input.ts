import type { Identity } from '../authn/identity.ts';
import type { Device } from './devices.ts';

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
  /** The request's risk score (0-1), when the route scores risk; undefined otherwise. */
  readonly risk: number | undefined;
}
