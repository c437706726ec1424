/** Rate decisions: what the caller guard answers and what the request state keeps for the headers. */
import type { RatePolicy } from "./settings";

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

/** What the throttle part decided, kept on the request state for the response headers. */
export interface RateLimitState {
  api: string;
  policy: RatePolicy;
  decision: RateDecision;
}
