import type { IRequest } from "itty-router";
import { callerIdentity } from "../admission/caller";
import { rateLimitHeaders } from "../admission/headers";
import type { AppRequest } from "../context";
import { recordCall, versionApi } from "./stats";

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
  const onError = (api: string) => (error: unknown, calls: number) =>
    state.logger.log("error", "statistics_record_failed", {
      api,
      calls,
      error: error instanceof Error ? error.message : String(error),
    });
  recordCall(ctx, env, state.api, state.config.STATS_SHARDS, event, onError(state.api));
  // Per model version as well (`GET /api/v1/models/:id/traffic`), for requests a version scored.
  if (state.served) {
    const api = versionApi(state.served.id, state.served.version);
    recordCall(ctx, env, api, state.config.STATS_SHARDS, event, onError(api));
  }
  if (!state.rateLimit) return response;
  // Built by this Worker, so its headers are mutable.
  for (const [name, value] of Object.entries(rateLimitHeaders(state.rateLimit)))
    response.headers.set(name, value);
  return response;
}
