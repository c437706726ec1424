import type { IRequest } from "itty-router";
import { callerIdentity } from "../admission/caller";
import { rateLimitHeaders } from "../admission/headers";
import type { AppRequest } from "../context";
import { recordCall } from "./stats";

/**
 * Router `finally` stage: adds the `RateLimit` headers the admission stage decided (also on error
 * responses) and counts the call, for every request including 404/405/errors, off the response
 * path (batched per isolate, delivered in `ctx.waitUntil`). Does nothing when `METERING=off` or
 * the config failed to load.
 */
export function meter(response: Response, request: IRequest, env: Env, ctx: ExecutionContext): Response {
  const state = (request as AppRequest).state;
  if (!state?.config || state.config.METERING === "off") return response;
  const event = {
    at: state.startedAt,
    status: response.status,
    latencyMs: Date.now() - state.startedAt,
    caller: callerIdentity(request as AppRequest),
  };
  recordCall(ctx, env, state.api, state.config.STATS_SHARDS, event, (error, calls) =>
    state.logger.log("error", "statistics_record_failed", {
      api: state.api,
      calls,
      error: error instanceof Error ? error.message : String(error),
    }),
  );
  if (!state.rateLimit) return response;
  // Built by this Worker, so its headers are mutable.
  for (const [name, value] of Object.entries(rateLimitHeaders(state.rateLimit)))
    response.headers.set(name, value);
  return response;
}
