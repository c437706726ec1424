/** Calls into an online model's `OnlineLearner` object, for the routes and the dashboard. */
import type { MetricsReport } from "../../durable-objects/online-learner";
import { ApiError } from "../errors";
import { withTimeout } from "../timeout";

/** The learner object of online model `id` (one per model). */
export function learner(env: Env, id: string) {
  return env.ONLINE_LEARNER.get(env.ONLINE_LEARNER.idFromName(id));
}

/**
 * Longest a learner call may take: an ingest of `ONLINE_MAX_SAMPLES` rows takes well under a
 * second; an object that does not answer in this time is treated as unavailable.
 */
const LEARNER_TIMEOUT_MS = 30_000;

/** Runs a learner RPC; a failure or a hang of the object itself becomes 503 `learner_unavailable`. */
export async function callLearner<T>(
  id: string,
  fn: () => Promise<T>,
  timeoutMs = LEARNER_TIMEOUT_MS,
): Promise<T> {
  try {
    return await withTimeout(fn(), timeoutMs, `the online learner of '${id}'`);
  } catch (cause) {
    throw new ApiError("learner_unavailable", `the online learner of '${id}' failed; retry`, {
      cause,
      headers: { "retry-after": "1" },
    });
  }
}

/** Windowed metrics, counters and accuracy series of online model `id` (see `MetricsReport`). */
export function learnerMetrics(env: Env, id: string, timeoutMs?: number): Promise<MetricsReport> {
  return callLearner(id, () => learner(env, id).metrics(id), timeoutMs);
}
