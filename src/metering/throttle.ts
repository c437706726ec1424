/** The throttle stage: per-caller, per-API rate limiting in `RateLimiter` objects. */
import type { RateDecision } from "../../durable-objects/rate-limiter";
import { ConfigError } from "../config";
import type { AppRequest } from "../context";
import { ApiError } from "../errors";
import { callerIdentity } from "./caller";
import { type RatePolicy, resolvePolicy, unknownApiOverrides } from "./limits";

/** What the throttle stage decided, kept on the request state for the response headers. */
export interface RateLimitState {
  api: string;
  policy: RatePolicy;
  decision: RateDecision;
}

/** Rejects after `ms` so an unreachable limiter yields a clear response instead of a hang. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`rate limiter did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/**
 * Builds the throttle stage for routes whose API is in `throttledApis`. It takes one request from
 * the caller's quota for the route's API in the caller's `RateLimiter` object; a refusal throws
 * `rate_limited` (429, `Retry-After`). When the limiter cannot be reached in
 * `RATE_LIMIT_TIMEOUT_MS`, `RATE_LIMIT_FAILURE_MODE` decides: `open` lets the request through
 * (logged), `closed` refuses it with 503 `rate_limiter_unavailable`. Off when `METERING=off`.
 */
export function createThrottle(throttledApis: readonly string[]) {
  const checked = new WeakSet<object>();
  return async (request: AppRequest, env: Env): Promise<void> => {
    const { config, api, logger } = request.state;
    if (config.METERING === "off") return;
    if (!checked.has(config)) {
      const unknown = unknownApiOverrides(config.RATE_LIMITS, throttledApis);
      if (unknown.length > 0) {
        throw new ConfigError(
          `invalid configuration in wrangler.toml [vars]: ${unknown.join(", ")}: not a throttled API (throttled: ${throttledApis.join(", ")})`,
        );
      }
      checked.add(config);
    }
    const caller = callerIdentity(request);
    const policy = resolvePolicy(config.RATE_LIMITS, api, caller);
    let decision: RateDecision;
    try {
      const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(caller));
      decision = await withTimeout(stub.take(api, policy), config.RATE_LIMIT_TIMEOUT_MS);
    } catch (cause) {
      const mode = config.RATE_LIMIT_FAILURE_MODE;
      logger.log("error", "rate_limiter_unreachable", {
        request_id: request.state.requestId,
        api,
        failure_mode: mode,
        error: cause instanceof Error ? cause.message : String(cause),
      });
      if (mode === "open") return;
      throw new ApiError("rate_limiter_unavailable", "the rate limiter could not be reached; retry shortly", {
        cause,
        headers: { "retry-after": "1" },
      });
    }
    request.state.rateLimit = { api, policy, decision };
    if (!decision.allowed) {
      throw new ApiError(
        "rate_limited",
        `rate limit of ${policy.limit} requests per ${policy.window} s for '${api}' exceeded; retry in ${decision.retryAfterSeconds} s`,
        { headers: { "retry-after": String(decision.retryAfterSeconds) } },
      );
    }
  };
}

/** IETF `RateLimit-Policy` and `RateLimit` header values (draft-ietf-httpapi-ratelimit-headers). */
export function rateLimitHeaders({ api, policy, decision }: RateLimitState): Record<string, string> {
  return {
    "ratelimit-policy": `"${api}";q=${policy.limit};w=${policy.window}`,
    ratelimit: `"${api}";r=${decision.remaining};t=${decision.resetSeconds}`,
  };
}
