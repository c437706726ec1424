import { loadConfig } from "./config";
import { checkDrift } from "./drift/report";
import { sweepStuckJobs } from "./jobs/sweep";
import { createLogger } from "./log";
import { sweepStuckPredictions } from "./predictions/sweep";
import { handleQueue } from "./queue/index";
import { purgeExpired } from "./retention";
import { buildRouter } from "./router";
import { sweepDeliveries } from "./webhooks/deliveries";

export { CallerGuard } from "../durable-objects/caller-guard";
export { DriftShard } from "../durable-objects/drift-shard";
export { OnlineLearner } from "../durable-objects/online-learner";
export { RolloutCallers } from "../durable-objects/rollout-callers";
export { ShadowShard } from "../durable-objects/shadow-shard";
export { StatsShard } from "../durable-objects/stats-shard";

const router = buildRouter();

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
  /** Training jobs, async predictions and their dead-letter queue (src/queue/). */
  queue: (batch, env, ctx) => handleQueue(batch, env, ctx),
  /**
   * Cron (wrangler.toml `[triggers]`): the retention purge, then the stuck-work sweeps of async
   * predictions and training jobs. Each runs even if another failed; the first failure is rethrown
   * so the invocation shows as failed.
   */
  async scheduled(_controller, env) {
    const config = loadConfig(env as unknown as Record<string, unknown>);
    const logger = createLogger(config.LOG_LEVEL);
    const tasks = [
      ["retention_purge", () => purgeExpired(env, config)],
      ["stuck_predictions_sweep", () => sweepStuckPredictions(env, config)],
      ["stuck_jobs_sweep", () => sweepStuckJobs(env, config)],
      // After the stuck-work sweeps: subjects they failed get their webhooks queued here.
      ["webhook_sweep", () => sweepDeliveries(env)],
      // Logs `model_drift` once per hour for each drifting model (src/drift/report.ts).
      ["drift_check", () => checkDrift(env, config, logger)],
    ] as const;
    let firstError: unknown;
    for (const [event, task] of tasks) {
      try {
        const report: object = await task();
        const level = "failed" in report && (report.failed as number) > 0 ? "warn" : "info";
        logger.log(level, event, { ...report });
      } catch (error) {
        logger.log("error", `${event}_failed`, {
          error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        });
        firstError ??= error;
      }
    }
    if (firstError !== undefined) throw firstError;
  },
} satisfies ExportedHandler<Env>;
