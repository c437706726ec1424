/**
 * GCRA (the generic cell rate algorithm, a token bucket stored as one timestamp), pure. A request
 * costs one emission interval `T = window / limit`; the theoretical arrival time `tat` advances by
 * `T` per accepted request and a request is accepted while `tat' - now <= burst * T`. A refusal
 * leaves `tat` untouched, so it consumes no quota. Times are in milliseconds.
 */

import type { RateDecision } from "../contracts/rate";
import type { RatePolicy } from "../contracts/settings";

function shape(policy: RatePolicy) {
  const interval = (policy.window * 1000) / policy.limit;
  // Float slack of 1/1000 interval: `interval` may be fractional (60 000 / 7), and rounding must
  // never cost a whole request.
  return { interval, capacity: (policy.burst ?? policy.limit) * interval, slack: interval / 1000 };
}

/**
 * Takes up to `want` requests at once (a lease; 1 for a single request): as many as the bucket
 * holds, at least 1, or none with a refusal. The decision is the first request's; its `remaining`
 * excludes everything granted.
 */
export function gcraTake(
  tat: number,
  now: number,
  policy: RatePolicy,
  want = 1,
): { granted: number; decision: RateDecision; tat: number } {
  const { interval, capacity, slack } = shape(policy);
  const seconds = (ms: number) => Math.ceil((ms - slack) / 1000);
  const base = Math.max(tat, now);
  const available = Math.max(0, Math.floor((capacity + slack - (base - now)) / interval));
  if (available < 1) {
    const wait = base + interval - capacity - now;
    return {
      granted: 0,
      tat,
      decision: {
        allowed: false,
        remaining: 0,
        resetSeconds: seconds(base - now),
        retryAfterSeconds: Math.max(1, seconds(wait)),
      },
    };
  }
  const granted = Math.max(1, Math.min(Math.floor(want), available));
  const next = base + granted * interval;
  return {
    granted,
    tat: next,
    decision: {
      allowed: true,
      remaining: available - granted,
      resetSeconds: seconds(next - now),
      retryAfterSeconds: 0,
    },
  };
}

/** One request's decision (`gcraTake` of 1). */
export function gcra(tat: number, now: number, policy: RatePolicy): { decision: RateDecision; tat: number } {
  const { decision, tat: next } = gcraTake(tat, now, policy, 1);
  return { decision, tat: next };
}

/**
 * Gives `unused` requests of a lease back: `tat` moves back by their emission intervals, never
 * below `now` (a bucket is never fuller than full).
 */
export function gcraGiveBack(tat: number, now: number, policy: RatePolicy, unused: number): number {
  const { interval } = shape(policy);
  return Math.max(now, tat - Math.max(0, Math.floor(unused)) * interval);
}
