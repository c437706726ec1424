/**
 * The admission stage, after authentication and before the handler: throttling from a local
 * quota lease (src/admission/leases.ts; the caller's `CallerGuard` is asked only when the lease
 * runs low, runs out or expires), then replay protection in the token's shard
 * (src/admission/replay.ts), whose answer the router awaits before any result is sent.
 */
import { ConfigError } from "../config";
import type { AppRequest } from "../context";
import type { RateDecision } from "../contracts/rate";
import type { RatePolicy } from "../contracts/settings";
import { ApiError } from "../errors";
import { withTimeout } from "../timeout";
import { callerIdentity } from "./caller";
import { LeaseHolder, type QuotaSource } from "./leases";
import { objectId } from "./object-ids";
import { resolvePolicy, resolveTotal, TOTAL_API, unknownApiOverrides } from "./policy";
import { spendToken } from "./replay";

/** This isolate's leases, one holder per lease setting (a config change starts afresh). */
const holders = new Map<string, LeaseHolder>();

function leaseHolder(ttlMs: number, sharePct: number): LeaseHolder {
  const key = `${ttlMs}/${sharePct}`;
  let holder = holders.get(key);
  if (!holder) {
    holder = new LeaseHolder({ ttlMs, maxShare: sharePct / 100 });
    holders.set(key, holder);
  }
  return holder;
}

/**
 * `caller`'s guard as a lease source. Its stub is made only when a lease is asked for: most
 * requests are served from the isolate's lease and never call the guard.
 */
function guardSource(env: Env, caller: string): QuotaSource {
  return {
    lease: (api, policy, want, unused) =>
      env.CALLER_GUARD.get(objectId(env.CALLER_GUARD, caller)).lease(api, policy, want, unused),
  };
}

/**
 * Builds the admission stage for routes that are authenticated and/or throttled (APIs in
 * `throttledApis`). Throttling (off when `METERING=off`) refuses with 429 `rate_limited` and
 * `Retry-After`; when the guard cannot be reached within `RATE_LIMIT_TIMEOUT_MS`,
 * `RATE_LIMIT_FAILURE_MODE` decides: `open` lets the request through (logged), `closed` refuses it
 * with 503 `rate_limiter_unavailable`. A request that is admitted and carries a token to check
 * (`request.state.token`, left by the auth stage for issuers with replay checking `strict`) gets
 * the pending replay check back (`replayCheck`): it settles when the token's shard has spent the id, and rejects
 * with `AuthError` (`replayed_token`, or `replay_guard_unavailable` after `ASAP_REPLAY_TIMEOUT_MS`).
 * A throttled request's token is not spent, so it may be retried with the same token.
 */
export function createAdmission(throttledApis: readonly string[]) {
  const checked = new WeakSet<object>();
  return async (
    request: AppRequest,
    env: Env,
    ctx: Pick<ExecutionContext, "waitUntil">,
    route: { throttle: boolean },
  ): Promise<{ replayCheck?: Promise<void> }> => {
    const { config, api, token } = request.state;
    if (route.throttle && config.METERING !== "off") {
      if (!checked.has(config)) {
        const unknown = unknownApiOverrides(config.RATE_LIMITS, throttledApis);
        if (unknown.length > 0) {
          throw new ConfigError(
            `invalid configuration in wrangler.toml [vars]: ${unknown.join(", ")}: not a throttled API (throttled: ${throttledApis.join(", ")})`,
          );
        }
        checked.add(config);
      }
      await throttle(request, env, ctx, api);
    }
    if (!token || !request.state.caller) return {};
    const check = spendToken(
      env.CALLER_GUARD,
      config.ASAP_REPLAY_SHARDS,
      request.state.caller.issuer,
      token,
      config.ASAP_REPLAY_TIMEOUT_MS,
    );
    // The router awaits it; until then a rejection must not count as unhandled. Returned inside an
    // object: an async function returning the promise itself would wait for it.
    check.catch(() => {});
    return { replayCheck: check };
  };
}

async function throttle(
  request: AppRequest,
  env: Env,
  ctx: Pick<ExecutionContext, "waitUntil">,
  api: string,
): Promise<void> {
  const { config } = request.state;
  const caller = callerIdentity(request);
  const policy: RatePolicy = resolvePolicy(config.RATE_LIMITS, api, caller);
  const decision = await decide(request, env, ctx, caller, api, policy);
  if (!decision) return;
  request.state.rateLimit = { api, policy, decision };
  if (!decision.allowed) {
    throw new ApiError(
      "rate_limited",
      `rate limit of ${policy.limit} requests per ${policy.window} s for '${api}' exceeded; retry in ${decision.retryAfterSeconds} s`,
      { headers: { "retry-after": String(decision.retryAfterSeconds) } },
    );
  }
  // The caller's total over all APIs (`RATE_LIMITS.total`), when one is configured: kept in the
  // same guard under `TOTAL_API`, leased like any API's quota.
  const total = resolveTotal(config.RATE_LIMITS, caller);
  if (!total) return;
  const overall = await decide(request, env, ctx, caller, TOTAL_API, total);
  if (!overall) return;
  if (!overall.allowed) {
    request.state.rateLimit = { api: "total", policy: total, decision: overall };
    throw new ApiError(
      "rate_limited",
      `rate limit of ${total.limit} requests per ${total.window} s over all APIs (RATE_LIMITS total) exceeded; retry in ${overall.retryAfterSeconds} s`,
      { headers: { "retry-after": String(overall.retryAfterSeconds) } },
    );
  }
}

/**
 * One decision of `caller`'s guard for `api` under `policy`, from the isolate's lease; undefined
 * when the guard cannot be reached and `RATE_LIMIT_FAILURE_MODE` is `open` (503 when `closed`).
 */
async function decide(
  request: AppRequest,
  env: Env,
  ctx: Pick<ExecutionContext, "waitUntil">,
  caller: string,
  api: string,
  policy: RatePolicy,
): Promise<RateDecision | undefined> {
  const { config, logger } = request.state;
  try {
    const holder = leaseHolder(config.RATE_LEASE_MS, config.RATE_LEASE_MAX_SHARE_PCT);
    const background = (work: Promise<unknown>) =>
      ctx.waitUntil(
        work.catch((error: unknown) =>
          logger.log("warn", "rate_lease_background_failed", {
            api,
            error: error instanceof Error ? error.message : String(error),
          }),
        ),
      );
    const source = guardSource(env, caller);
    const now = Date.now();
    // From the isolate's lease when it has quota: no I/O, so no timer to set and clear.
    const local = holder.admitLocal(caller, api, policy, source, now, background);
    if (local) return local;
    return await withTimeout(
      holder.admit(caller, api, policy, source, now, background),
      config.RATE_LIMIT_TIMEOUT_MS,
      "caller guard",
    );
  } catch (cause) {
    const mode = config.RATE_LIMIT_FAILURE_MODE;
    logger.log("error", "rate_limiter_unreachable", {
      request_id: request.state.requestId,
      api,
      failure_mode: mode,
      error: cause instanceof Error ? cause.message : String(cause),
    });
    if (mode === "open") return undefined;
    throw new ApiError("rate_limiter_unavailable", "the rate limiter could not be reached; retry shortly", {
      cause,
      headers: { "retry-after": "1" },
    });
  }
}

/**
 * Runs `handler` while `check` (a pending replay check) is under way, and returns its result only
 * once `check` has said yes: a refused token never receives a result, whatever the handler did.
 */
export async function afterCheck<T>(check: Promise<void>, handler: () => Promise<T> | T): Promise<T> {
  const outcome = Promise.resolve()
    .then(handler)
    .then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
  await check;
  const settled = await outcome;
  if (!settled.ok) throw settled.error;
  return settled.value;
}
