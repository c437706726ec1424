/**
 * Safe rollout of model versions (docs/rollout.md): the traffic split, shadow versions with their
 * comparisons, and per-version traffic. Thin: parse → src/registry/rollout.ts → shape.
 */
import * as z from "zod";
import { ShadowReportSchema, ShadowsAnswerSchema, SplitAnswerSchema, TrafficSchema } from "../answers";
import type { AppRequest, Handler } from "../context";
import { MODEL_ID_RE } from "../contracts/manifest";
import { ApiError } from "../errors";
import { readJsonBody, reply, validate } from "../http";
import {
  clearShadows,
  clearSplit,
  modelTraffic,
  setShadows,
  setSplit,
  shadowReport,
} from "../registry/rollout";

function modelId(request: AppRequest): string {
  const id = request.params.id ?? "";
  if (!MODEL_ID_RE.test(id)) throw new ApiError("model_not_found", `no model named '${id.slice(0, 80)}'`);
  return id;
}

/** `PUT /api/v1/models/:id/split` body (the rules beyond the shape: `checkSplit`). */
export const splitRequestSchema = z.strictObject({
  split: z
    .record(z.string(), z.unknown())
    .describe('model version → integer percent of callers, summing to 100, e.g. {"4": 90, "5": 10}'),
});

/** `PUT /api/v1/models/:id/shadow` body (the rules beyond the shape: `checkShadows`). */
export const shadowRequestSchema = z.strictObject({
  shadows: z
    .array(
      z.strictObject({
        version: z.string(),
        sample_rate: z.unknown().describe("share of requests the shadow also scores, in (0, 1]"),
      }),
    )
    .describe('e.g. [{"version": "5", "sample_rate": 0.1}]'),
});

/** `PUT /api/v1/models/:id/split` `{"split": {"4": 90, "5": 10}}`. */
export const putSplit: Handler = async (request, env) => {
  const { config } = request.state;
  const id = modelId(request);
  const body = validate(splitRequestSchema, await readJsonBody(request, config.MAX_BODY_BYTES));
  return reply(SplitAnswerSchema, await setSplit(env, config, id, body.split));
};

/** `DELETE /api/v1/models/:id/split`: every caller gets the active version again. */
export const deleteSplit: Handler = async (request, env) =>
  reply(SplitAnswerSchema, await clearSplit(env, modelId(request)));

/** `PUT /api/v1/models/:id/shadow` `{"shadows": [{"version", "sample_rate"}]}`. */
export const putShadow: Handler = async (request, env) => {
  const { config } = request.state;
  const id = modelId(request);
  const body = validate(shadowRequestSchema, await readJsonBody(request, config.MAX_BODY_BYTES));
  return reply(ShadowsAnswerSchema, await setShadows(env, config, id, body.shadows));
};

/** `DELETE /api/v1/models/:id/shadow`: no more shadow runs (the comparisons are kept). */
export const deleteShadow: Handler = async (request, env) =>
  reply(ShadowsAnswerSchema, await clearShadows(env, modelId(request)));

/** `GET /api/v1/models/:id/shadow`: the shadows and their comparisons. */
export const getShadow: Handler = async (request, env) =>
  reply(ShadowReportSchema, await shadowReport(env, request.state.config, modelId(request)));

/** `GET /api/v1/models/:id/traffic`: requests, errors and latency per version. */
export const getTraffic: Handler = async (request, env) =>
  reply(TrafficSchema, await modelTraffic(env, request.state.config, modelId(request), Date.now()));
