/** Calls into an online model's `OnlineLearner` object, for the routes and the dashboard. */
import type { MetricsReport } from "../../durable-objects/online-learner";
import { ApiError } from "../errors";

/** The learner object of online model `id` (one per model). */
export function learner(env: Env, id: string) {
  return env.ONLINE_LEARNER.get(env.ONLINE_LEARNER.idFromName(id));
}

/** Runs a learner RPC; a failure of the object itself becomes 503 `learner_unavailable`. */
export async function callLearner<T>(id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    throw new ApiError("learner_unavailable", `the online learner of '${id}' failed; retry`, {
      cause,
      headers: { "retry-after": "1" },
    });
  }
}

/** Windowed metrics, counters and accuracy series of online model `id` (see `MetricsReport`). */
export function learnerMetrics(env: Env, id: string): Promise<MetricsReport> {
  return callLearner(id, () => learner(env, id).metrics(id));
}
