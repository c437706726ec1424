/** `GET /api/v1/models/:id/drift`: a model version's PSI per signal per hour (docs/drift.md). */
import * as z from "zod";
import { DriftSchema } from "../answers";
import type { Handler } from "../context";
import { MODEL_ID_RE, MODEL_VERSION_RE } from "../contracts/manifest";
import { DRIFT_KEEP_HOURS } from "../drift/live";
import { readDrift, warnDrift } from "../drift/report";
import { ApiError } from "../errors";
import { reply, validate } from "../http";

export const driftQuerySchema = z.strictObject({
  version: z
    .string({ error: "version must be given once" })
    .regex(MODEL_VERSION_RE, "version must be a model version")
    .optional()
    .describe("the version (default: the active one)"),
  hours: z
    .string({ error: "hours must be given once" })
    .regex(/^\d{1,2}$/, `hours must be a whole number from 1 to ${DRIFT_KEEP_HOURS}`)
    .refine((h) => Number(h) >= 1 && Number(h) <= DRIFT_KEEP_HOURS, {
      message: `hours must be a whole number from 1 to ${DRIFT_KEEP_HOURS}`,
    })
    .optional()
    .describe(`hours to report, ending with the current one (default 24, at most ${DRIFT_KEEP_HOURS})`),
});

/**
 * `GET /api/v1/models/:id/drift[?version=&hours=]`: PSI per signal per hour of the version's live
 * inputs against its reference profile; hours without traffic are empty windows (count 0, psi
 * null). A drifting hour is also logged (once per hour, `warnDrift`).
 */
export const getDrift: Handler = async (request, env) => {
  const id = request.params.id ?? "";
  if (!MODEL_ID_RE.test(id)) throw new ApiError("model_not_found", `no model named '${id.slice(0, 80)}'`);
  const query = validate(driftQuerySchema, { ...request.query });
  const report = await readDrift(env, request.state.config, id, query.version, Number(query.hours ?? 24));
  request.state.model = report.model;
  if (report.drift === "warning") await warnDrift(env, report, request.state.logger);
  return reply(DriftSchema, report);
};
