import type { RateLimitState } from "../contracts/rate";

/** IETF `RateLimit-Policy` and `RateLimit` header values (draft-ietf-httpapi-ratelimit-headers). */
export function rateLimitHeaders({ api, policy, decision }: RateLimitState): Record<string, string> {
  return {
    "ratelimit-policy": `"${api}";q=${policy.limit};w=${policy.window}`,
    ratelimit: `"${api}";r=${decision.remaining};t=${decision.resetSeconds}`,
  };
}
