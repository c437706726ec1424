import * as z from "zod";
import { StatisticsSchema } from "../answers";
import type { Handler } from "../context";
import { ApiError } from "../errors";
import { reply, validate } from "../http";
import { readAllStatistics, readApiStatistics, statisticsApis } from "../metering/stats";

export const statisticsQuerySchema = z.strictObject({
  api: z
    .string({ error: "api must be given once" })
    .regex(/^[a-z][a-z0-9_]{0,63}$/, "api must be an API name like `predict`")
    .optional(),
});

/**
 * `GET /api/v1/statistics[?api=<name>]`: call statistics of one API, or of every API (a list)
 * without `api`. `routeApis` lists the route table's APIs; unmatched requests count as `unknown`.
 */
export function statistics(routeApis: () => readonly string[]): Handler {
  return async (request, env) => {
    const query = validate(statisticsQuerySchema, { ...request.query });
    const known = statisticsApis(routeApis());
    if (query.api !== undefined && !known.includes(query.api)) {
      throw new ApiError("api_not_found", `no API named '${query.api}'`, { extensions: { apis: known } });
    }
    const now = Date.now();
    const shards = request.state.config.STATS_SHARDS;
    if (query.api !== undefined) {
      const stats = await readApiStatistics(env, query.api, shards, now);
      return reply(StatisticsSchema, { ...stats, as_of: new Date(now).toISOString() });
    }
    return reply(StatisticsSchema, await readAllStatistics(env, known, shards, now));
  };
}
