/**
 * Online learning routes (docs/online.md):
 *   POST /api/v1/models/:id/samples   labelled samples (JSON array or text/csv) → the model's learner
 *   POST /api/v1/models/:id/predict   one sample → `["<AccountNumber>"]` (top k with `?n_top=k`)
 *   GET  /api/v1/models/:id/metrics   windowed precision/recall/accuracy, counters, series
 *   POST /api/v1/models/:id/reset     forget everything the learner learned (admin)
 * Online models are those ONLINE_MODELS lists and those created with `POST /api/v1/models`
 * (`task: "online"`); any other id is 404 `model_not_found`.
 */

import { IngestResultSchema, OnlineMetricsSchema, OnlineResetSchema } from "../answers";
import type { AppRequest, Handler } from "../context";
import { readJsonBody, reply } from "../http";
import { learnerMetrics } from "../online/client";
import { onlinePredictionResponse, predictOptions, readSampleRecords } from "../online/io";
import {
  type OnlineModel,
  requiredColumns,
  requireOnlineModel,
  resetOnlineModel,
} from "../online/online-models";
import { ingestSamples, predictOnline } from "../online/service";

/** The online model of the route, or 404 when there is none of that id. */
function onlineModel(request: AppRequest, env: Env): Promise<OnlineModel> {
  return requireOnlineModel(env, request.state.config, decodeURIComponent(String(request.params.id ?? "")));
}

/**
 * `POST /api/v1/models/:id/samples`: labelled samples (a JSON array, one object, or `text/csv`) →
 * the model's learner (see `ingestSamples`). Returns counts and versions.
 */
export const onlineSamples: Handler = async (request, env) => {
  const { config } = request.state;
  const model = await onlineModel(request, env);
  const records = await readSampleRecords(request, config, "native", requiredColumns(model));
  return reply(IngestResultSchema, await ingestSamples(env, config, model, records));
};

/**
 * `POST /api/v1/models/:id/predict`: one sample (the `Account*` fields are not needed) →
 * `["<AccountNumber>"]`, or with `?n_top=k` the top k as `[{"AccountNumber", "score"}]`. Served by
 * the model's active snapshot (`X-Model-Version` names it); with `?source=learner` by the learner.
 */
export const onlinePredict: Handler = async (request, env) => {
  const { config } = request.state;
  const model = await onlineModel(request, env);
  const { nTop, source } = predictOptions(new URL(request.url));
  const body = await readJsonBody(request, config.MAX_BODY_BYTES);
  return onlinePredictionResponse(
    await predictOnline(env, request.state, model, body, nTop, source),
    nTop,
    model.fields.AccountNumber,
  );
};

/** `GET /api/v1/models/:id/metrics`: see `MetricsReport`. */
export const onlineMetrics: Handler = async (request, env) => {
  const model = await onlineModel(request, env);
  return reply(OnlineMetricsSchema, await learnerMetrics(env, model.id));
};

/** `POST /api/v1/models/:id/reset`: the learner starts again from nothing (see `resetOnlineModel`). */
export const onlineReset: Handler = async (request, env) => {
  const model = await onlineModel(request, env);
  return reply(OnlineResetSchema, await resetOnlineModel(env, request.state.config, model.id));
};
