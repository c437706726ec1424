import { buildRouter } from "./router";

export { RateLimiter } from "../durable-objects/rate-limiter";
export { ReplayGuard } from "../durable-objects/replay-guard";
export { StatsShard } from "../durable-objects/stats-shard";

const router = buildRouter();

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
