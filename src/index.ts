import { loadConfig } from "./config";
import { createLogger } from "./log";
import { handleQueue } from "./queue/index";
import { purgeExpired } from "./retention";
import { buildRouter } from "./router";

export { CallerGuard } from "../durable-objects/caller-guard";
export { OnlineLearner } from "../durable-objects/online-learner";
export { StatsShard } from "../durable-objects/stats-shard";

const router = buildRouter();

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
  /** Training jobs, async predictions and their dead-letter queue (src/queue/). */
  queue: (batch, env, ctx) => handleQueue(batch, env, ctx),
  /** Cron (wrangler.toml `[triggers]`): the retention purge. */
  async scheduled(_controller, env) {
    const config = loadConfig(env as unknown as Record<string, unknown>);
    const report = await purgeExpired(env, config);
    createLogger(config.LOG_LEVEL).log("info", "retention_purge", { ...report });
  },
} satisfies ExportedHandler<Env>;
