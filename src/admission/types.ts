/** Types shared by the admission stage (src/admission/) and the `CallerGuard` object. */
import type { RatePolicy } from "../metering/limits";

/** Outcome of one rate decision, with what the IETF `RateLimit` header and `Retry-After` need. */
export interface RateDecision {
  allowed: boolean;
  /** Requests that may still be made right now (`r`). */
  remaining: number;
  /** Seconds until the full burst is available again (`t`), rounded up. */
  resetSeconds: number;
  /** Seconds until a refused request would be accepted, rounded up; 0 when allowed. */
  retryAfterSeconds: number;
}

/** What one request asks of a guard; either part may be absent. */
export interface Admission {
  /** Replay protection: the token's id, recorded until `expiresAt` (ms since the epoch). */
  token?: { jti: string; expiresAt: number };
  /** Throttling: one request of `api` to take from the caller's quota under `policy`. */
  rate?: { api: string; policy: RatePolicy };
}

/** The guard's answer. On a replay nothing is recorded and no quota is taken. */
export interface AdmissionResult {
  replayed: boolean;
  /** The rate decision, when `rate` was asked and the token is not a replay. */
  decision?: RateDecision;
}

/**
 * A quota lease: `granted` requests (0 on a refusal) taken at once from the caller's quota. The
 * `decision` is the one for the first of them (the request that asked); its `remaining` already
 * excludes the whole grant.
 */
export interface LeaseGrant {
  granted: number;
  decision: RateDecision;
}

/** What the throttle part decided, kept on the request state for the response headers. */
export interface RateLimitState {
  api: string;
  policy: RatePolicy;
  decision: RateDecision;
}
