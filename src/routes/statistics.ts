import * as z from "zod";
import { StatisticsSchema } from "../answers";
import { isAdmin } from "../auth/policy";
import type { Handler } from "../context";
import { ApiError } from "../errors";
import { reply, validate } from "../http";
import { onlyOwnCallers, readAllStatistics, readApiStatistics, statisticsApis } from "../metering/stats";

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
    const { config, caller } = request.state;
    const shards = config.STATS_SHARDS;
    // Other callers' names only to admins (the dashboard shows the same).
    const issuer = config.ASAP_AUTH ? caller?.issuer : undefined;
    const admin = issuer !== undefined && isAdmin(config.ASAP_POLICY, issuer);
    if (query.api !== undefined) {
      const stats = await readApiStatistics(env, query.api, shards, now);
      onlyOwnCallers([stats], issuer, admin);
      return reply(StatisticsSchema, { ...stats, as_of: new Date(now).toISOString() });
    }
    const all = await readAllStatistics(env, known, shards, now);
    onlyOwnCallers(all.apis, issuer, admin);
    return reply(StatisticsSchema, all);
  };
}
