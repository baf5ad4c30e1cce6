// What normalize, authorize, validate and assess leave on a request: plain data, read by every later stage.
import type { GatewayErrorCode } from './errors.ts';
import type { Reason } from './reasons.ts';

export interface CanonicalHost {
  /** Lower-case name or IP literal (IPv6 without brackets); no port; no trailing dot. */
  readonly name: string;
  /** name plus ":port" when the client gave a port: what X-Forwarded-Host carries. */
  readonly authority: string;
}

export interface CanonicalTarget {
  /** Percent-encoding normalized (unreserved decoded, hex upper-cased); forwarded byte for byte. */
  readonly path: string;
  /** The same path with `;params` cut from every segment: what routes and path rules match against. */
  readonly matchPath: string;
  /** '' or '?…' exactly as received. */
  readonly query: string;
}

export interface RuleReason {
  readonly rule: string;
  readonly reason: Reason;
  /** For params / query_params conditions: the parameter that failed. */
  readonly param?: string;
}

export interface Decision {
  readonly allow: boolean;
  /** The rule that decided: the matching allow or deny rule; undefined for default deny. */
  readonly rule: string | undefined;
  readonly reasons: readonly RuleReason[];
}

export interface FieldError {
  readonly in: 'path' | 'query' | 'headers' | 'body';
  /** JSON pointer of the failing field ('' for the whole part). */
  readonly path: string;
  /** The schema keyword (type, required, additionalProperties, …) or json, duplicate-key, depth, operation. */
  readonly rule: string;
}

/** What report-only forwarded anyway: audited as would_reject. */
export interface ValidationReport {
  readonly code: GatewayErrorCode;
  readonly errors: readonly FieldError[];
}

/** The assess stage's score for this request (the risk engine keeps its own richer result type). */
export interface RiskAssessment {
  readonly score: number;
  readonly signals: ReadonlyArray<{ readonly name: string; readonly weight: number; readonly detail?: Readonly<Record<string, number | string>> }>;
}
