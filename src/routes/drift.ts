/**
 * `GET /api/v1/models/:id/drift`: a model version's PSI per signal per hour; `PUT
 * /api/v1/models/:id/drift/reference`: set its baseline reference from live hours (docs/drift.md).
 */
import * as z from "zod";
import { DriftReferenceSchema, DriftSchema } from "../answers";
import type { Handler } from "../context";
import { MODEL_ID_RE, MODEL_VERSION_RE } from "../contracts/manifest";
import { DRIFT_KEEP_HOURS } from "../drift/live";
import { setBaselineReference } from "../drift/reference";
import { readDrift, warnDrift } from "../drift/report";
import { ApiError } from "../errors";
import { readJsonBody, reply, validate } from "../http";

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

/** `PUT /api/v1/models/:id/drift/reference` body. */
export const driftReferenceRequestSchema = z.strictObject({
  version: z
    .string()
    .regex(MODEL_VERSION_RE, "version must be a model version")
    .optional()
    .describe("the version (default: the active one)"),
  from: z.iso
    .datetime({ offset: true, error: "from must be an ISO 8601 date-time, e.g. 2026-12-06T15:00:00Z" })
    .describe("the window's first hour (a UTC hour start, within the 48 h kept)"),
  to: z.iso
    .datetime({ offset: true, error: "to must be an ISO 8601 date-time, e.g. 2026-12-06T16:00:00Z" })
    .describe("the window's end, exclusive (a UTC hour start, at most the current hour's)"),
});

/**
 * `PUT /api/v1/models/:id/drift/reference` `{"version"?, "from", "to"}` (admin): the version's
 * reference becomes a baseline of its live inputs in those complete hours (docs/drift.md).
 */
export const putDriftReference: Handler = async (request, env) => {
  const { config } = request.state;
  const id = request.params.id ?? "";
  if (!MODEL_ID_RE.test(id)) throw new ApiError("model_not_found", `no model named '${id.slice(0, 80)}'`);
  const body = validate(driftReferenceRequestSchema, await readJsonBody(request, config.MAX_BODY_BYTES));
  const { profile, bytes } = await setBaselineReference(env, config, id, body.version, {
    from: Date.parse(body.from),
    to: Date.parse(body.to),
  });
  request.state.model = profile.model;
  return reply(DriftReferenceSchema, {
    model: profile.model,
    reference: {
      origin: "baseline",
      source: profile.source,
      count: profile.count,
      created_at: profile.created_at,
      window: profile.window,
    },
    bytes,
  });
};
