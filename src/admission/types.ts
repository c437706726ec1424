/** Types shared by the admission stage (src/admission/) and the `CallerGuard` object. */
import type { RateDecision } from "../contracts/rate";
import type { RatePolicy } from "../contracts/settings";

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
