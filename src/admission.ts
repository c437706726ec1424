/**
 * The admission stage: replay protection and throttling in one round trip to the caller's
 * `CallerGuard` object (durable-objects/caller-guard.ts), after authentication and before the
 * handler.
 */
import type { Admission, AdmissionResult, RateDecision } from "../durable-objects/caller-guard";
import { AuthError } from "./auth/failure";
import { authProblem } from "./auth/stage";
import { ConfigError } from "./config";
import type { AppRequest } from "./context";
import { ApiError } from "./errors";
import { callerIdentity } from "./metering/caller";
import { type RatePolicy, resolvePolicy, unknownApiOverrides } from "./metering/limits";
import { withTimeout } from "./timeout";

/** What the throttle part decided, kept on the request state for the response headers. */
export interface RateLimitState {
  api: string;
  policy: RatePolicy;
  decision: RateDecision;
}

/**
 * Builds the admission stage for a route that is authenticated and/or throttled (APIs in
 * `throttledApis`). It asks the caller's guard, in one call, to refuse a replayed token (the
 * `request.state.token` left by the auth stage: 401 `replayed_token`) and to take one request from
 * the caller's quota for the route's API (throttling is off when `METERING=off`; a refusal is 429
 * `rate_limited` with `Retry-After`). When the guard cannot be reached: a request with a token to
 * check gets 503 `auth_unavailable` after `ASAP_REPLAY_TIMEOUT_MS` (replay protection never fails
 * open, so it waits longer); otherwise, after `RATE_LIMIT_TIMEOUT_MS`, `RATE_LIMIT_FAILURE_MODE`
 * decides: `open` lets the request through (logged), `closed` refuses it with 503
 * `rate_limiter_unavailable`.
 */
export function createAdmission(throttledApis: readonly string[]) {
  const checked = new WeakSet<object>();
  return async (request: AppRequest, env: Env, route: { throttle: boolean }): Promise<void> => {
    const { config, api, logger, token } = request.state;
    const throttled = route.throttle && config.METERING !== "off";
    if (!token && !throttled) return;
    const caller = callerIdentity(request);
    const admission: Admission = {};
    if (token) admission.token = token;
    let policy: RatePolicy | undefined;
    if (throttled) {
      if (!checked.has(config)) {
        const unknown = unknownApiOverrides(config.RATE_LIMITS, throttledApis);
        if (unknown.length > 0) {
          throw new ConfigError(
            `invalid configuration in wrangler.toml [vars]: ${unknown.join(", ")}: not a throttled API (throttled: ${throttledApis.join(", ")})`,
          );
        }
        checked.add(config);
      }
      policy = resolvePolicy(config.RATE_LIMITS, api, caller);
      admission.rate = { api, policy };
    }

    let result: AdmissionResult;
    try {
      const stub = env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(caller));
      const timeoutMs = token ? config.ASAP_REPLAY_TIMEOUT_MS : config.RATE_LIMIT_TIMEOUT_MS;
      result = await withTimeout(stub.admit(admission), timeoutMs, "caller guard");
    } catch (cause) {
      if (token) {
        throw authProblem(
          new AuthError("replay_guard_unavailable", "replay protection is unavailable; retry later"),
          request,
        );
      }
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

    if (result.replayed) {
      throw authProblem(new AuthError("replayed_token", "token jti has been used before"), request);
    }
    const { decision } = result;
    if (!policy || !decision) return;
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
