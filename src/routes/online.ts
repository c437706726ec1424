/**
 * Online learning routes (docs/online.md):
 *   POST /api/v1/models/:id/samples   labelled samples (JSON array or text/csv) → the model's learner
 *   POST /api/v1/models/:id/predict   one sample → `["<AccountNumber>"]` (top k with `?n_top=k`)
 *   GET  /api/v1/models/:id/metrics   windowed precision/recall/accuracy, counters, series
 * Only model ids listed in `ONLINE_MODELS` are online models; others are 404 `model_not_found`.
 */
import type { Config } from "../config";
import type { AppRequest, Handler } from "../context";
import { json, readJsonBody } from "../http";
import { learnerMetrics } from "../online/client";
import { onlinePredictionResponse, predictOptions, readSampleRecords } from "../online/io";
import { ingestSamples, predictOnline, requireOnlineModel } from "../online/service";

/** The online model id of the route, or 404 when `ONLINE_MODELS` does not list it. */
function onlineModelId(request: AppRequest, config: Config): string {
  return requireOnlineModel(config, decodeURIComponent(String(request.params.id ?? "")));
}

/**
 * `POST /api/v1/models/:id/samples`: labelled samples (a JSON array, one object, or `text/csv`) →
 * the model's learner (see `ingestSamples`). Returns counts and versions.
 */
export const onlineSamples: Handler = async (request, env) => {
  const { config } = request.state;
  const id = onlineModelId(request, config);
  return json(await ingestSamples(env, config, id, await readSampleRecords(request, config)));
};

/**
 * `POST /api/v1/models/:id/predict`: one sample (the `Account*` fields are not needed) →
 * `["<AccountNumber>"]`, or with `?n_top=k` the top k as `[{"AccountNumber", "score"}]`. Served by
 * the model's active snapshot (`X-Model-Version` names it); with `?source=learner` by the learner.
 */
export const onlinePredict: Handler = async (request, env) => {
  const { config } = request.state;
  const id = onlineModelId(request, config);
  const { nTop, source } = predictOptions(new URL(request.url));
  const body = await readJsonBody(request, config.MAX_BODY_BYTES);
  return onlinePredictionResponse(await predictOnline(env, request.state, id, body, nTop, source), nTop);
};

/** `GET /api/v1/models/:id/metrics`: see `MetricsReport`. */
export const onlineMetrics: Handler = async (request, env) => {
  const id = onlineModelId(request, request.state.config);
  return json(await learnerMetrics(env, id));
};
