/** Async predictions (`POST`/`GET /api/v1/predictions/:id`) and the prediction log (`GET /api/v1/predictions`). */
import { z } from "zod";
import type { Handler } from "../context";
import { ApiError } from "../errors";
import { json, validate } from "../http";
import { decodeBase64Image, readImageHeader } from "../image/decode";
import { resolveNetwork } from "../inference/network";
import { readLog } from "../predictions/log";
import { inputKey, type PredictionInput, type PredictionRow, predictionView } from "../predictions/run";
import { d1 } from "../registry/db";
import { getManifest, resolveVersion } from "../storage/models";
import { checkTexts, predictRequestSchema, readPredictBody } from "./predict";

/**
 * `POST /api/v1/predictions`: `{model?, version?, text | texts | image, n_top?, request_id?}`,
 * validated like `POST /api/v1/predict` (an image: base64 PNG/JPEG ≤ 1 MiB, for image models). The
 * model version is resolved now and pinned; the input goes to R2 (`inputs/<id>`), a `queued` row
 * to D1, and `{kind: "prediction", id, key}` to the queue → 202 `{id, status_url}`.
 */
export const submitPrediction: Handler = async (request, env) => {
  const { config } = request.state;
  const body = validate(predictRequestSchema, await readPredictBody(request, config.MAX_BODY_BYTES));
  request.state.clientRequestId = body.request_id;
  let input: PredictionInput;
  if (body.image !== undefined) {
    if (body.text !== undefined || body.texts !== undefined) {
      throw new ApiError("invalid_request", "give either 'image' or 'text'/'texts', not both", {
        extensions: { errors: [{ path: "image", message: "image cannot be combined with text or texts" }] },
      });
    }
    readImageHeader(decodeBase64Image(body.image));
    input = { image: body.image };
  } else {
    const texts = checkTexts(body, config.MAX_TEXT_BYTES, config.MAX_BATCH);
    input = body.texts ? { texts } : { text: texts[0] as string };
  }
  const modelId = await resolveNetwork(
    env.MODELS,
    config,
    body.model ?? config.DEFAULT_MODEL,
    body.version,
    body.network,
  );
  const version = await resolveVersion(env.MODELS, modelId, body.version, config.ACTIVE_POINTER_TTL_MS);
  const manifest = await getManifest(env.MODELS, modelId, version, config.ACTIVE_POINTER_TTL_MS);
  if ((manifest.kind === "image") !== (input.image !== undefined)) {
    throw new ApiError(
      "model_input_mismatch",
      manifest.kind === "image"
        ? `model '${modelId}' classifies images: send 'image' (base64 PNG or JPEG), not text`
        : `model '${modelId}' classifies text: send 'text' or 'texts', not 'image'`,
    );
  }
  request.state.model = { id: modelId, version };
  const id = crypto.randomUUID();
  const key = inputKey(id);
  await env.MODELS.put(key, JSON.stringify(input), { httpMetadata: { contentType: "application/json" } });
  try {
    await d1("create prediction", () =>
      env.DB.prepare(
        `INSERT INTO predictions (id, model_id, model_version, status, input_key, request_id, n_top, caller, created_at)
         VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)`,
      )
        .bind(
          id,
          modelId,
          version,
          key,
          body.request_id === undefined ? null : JSON.stringify(body.request_id),
          body.n_top ?? null,
          request.state.caller?.issuer ?? null,
          Date.now(),
        )
        .run(),
    );
  } catch (error) {
    await env.MODELS.delete(key);
    throw error;
  }
  try {
    await env.PREDICTIONS_QUEUE.send({ kind: "prediction", id, key });
  } catch (cause) {
    await env.DB.prepare("DELETE FROM predictions WHERE id = ?").bind(id).run();
    await env.MODELS.delete(key);
    throw new ApiError("queue_unavailable", "the prediction queue is unavailable; retry later", {
      cause,
      headers: { "retry-after": "5" },
    });
  }
  const statusUrl = `/api/v1/predictions/${id}`;
  return json({ id, status: "queued", status_url: statusUrl, model: { id: modelId, version } }, 202, {
    location: statusUrl,
  });
};

/**
 * `GET /api/v1/predictions/:id`: status, result or error, model, times. Only the issuer that
 * submitted a prediction sees it (any other gets 404, as for an unknown id).
 */
export const getPrediction: Handler = async (request, env) => {
  const id = request.params.id ?? "";
  const row = z.uuid().safeParse(id).success
    ? await d1("read prediction", () =>
        env.DB.prepare("SELECT * FROM predictions WHERE id = ?").bind(id).first<PredictionRow>(),
      )
    : null;
  const caller = request.state.caller?.issuer;
  if (!row || (row.caller !== null && caller !== undefined && row.caller !== caller)) {
    throw new ApiError("prediction_not_found", `no prediction '${id.slice(0, 80)}'`);
  }
  request.state.model = { id: row.model_id, version: row.model_version };
  return json(predictionView(row));
};

const logQuerySchema = z.strictObject({
  model: z.string().max(64).optional(),
  since: z.iso.datetime({ offset: true, error: "since must be an ISO 8601 date-time" }).optional(),
  limit: z
    .string()
    .regex(/^\d+$/, "limit must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(1).max(1000))
    .optional(),
  cursor: z
    .string()
    .regex(/^\d{1,16}$/, "cursor must be a next_cursor value")
    .optional(),
});

/**
 * `GET /api/v1/predictions?model=&since=&limit=&cursor=`: the prediction log, oldest first,
 * `limit` (default 100, at most 1000) rows per page; `next_cursor` pages on (null at the end).
 */
export const listPredictionLog: Handler = async (request, env) => {
  const query = validate(logQuerySchema, { ...request.query });
  const page = await d1("read prediction log", () =>
    readLog(env.DB, {
      model: query.model,
      since: query.since === undefined ? undefined : Date.parse(query.since),
      after: query.cursor === undefined ? 0 : Number(query.cursor),
      limit: query.limit ?? 100,
    }),
  );
  return json(page);
};
