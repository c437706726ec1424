/**
 * Compatibility routes of the services edge-inference replaces, with their paths and bodies as
 * those services documented them (docs/protocols.md). Each handler parses its service's shape,
 * calls the same core as the native routes, and shapes the answer as that service did.
 *
 * - Text-category registry (Flask/Celery): `GET /models`, `POST /models`, `DELETE /models/<id>`,
 *   `GET /prediction` with a JSON body.
 * - Online-learning API (Flask): `POST /sample`, `POST /predict`, `GET /metrics`, bound to
 *   `COMPAT_ONLINE_MODEL`.
 * - Async image service (FastAPI): `POST /inference/image` `{"name", "data"}` → `{"uuid"}`,
 *   `GET /predictions/<uuid>` → `{"prediction": "<top label>"}`, with `DEFAULT_IMAGE_MODEL`.
 */
import * as z from "zod";
import {
  CompatPredictAnswerSchema,
  CompatSampleAnswerSchema,
  CreatedJobSchema,
  DeletionSchema,
  ImageServicePendingSchema,
  ImageServiceResultSchema,
  ImageServiceSubmitSchema,
  MessageSchema,
  ModelListSchema,
  OnlineMetricsSchema,
  RegistryPredictionSchema,
} from "../answers";
import type { AppRequest, Handler } from "../context";
import { MODEL_ID_RE } from "../contracts/manifest";
import { ApiError } from "../errors";
import { readJsonBody, reply, validate } from "../http";
import { MAX_IMAGE_BODY_BYTES } from "../image/decode";
import { createTrainingJob } from "../jobs/create";
import { DATASET_KEY_RE } from "../jobs/spec";
import { learnerMetrics } from "../online/client";
import { frameRecords } from "../online/frame";
import { predictOptions, readSampleRecords } from "../online/io";
import { deleteAnyModel, type OnlineModel, requireOnlineModel } from "../online/online-models";
import { ingestSamples, predictOnline } from "../online/service";
import { checkTextLimits, classifyTexts, ranked } from "../predictions/classify";
import { readPrediction, submitPrediction } from "../predictions/submit";
import { listModelSummaries } from "../registry/list";

/** `"True"`/`"False"` as the registry service's clients send booleans (any case), or a JSON boolean. */
const stringBoolean = z
  .union([z.boolean(), z.enum(["true", "false", "True", "False", "TRUE", "FALSE"])])
  .transform((v) => v === true || (typeof v === "string" && v.toLowerCase() === "true"));

/** A count as a number or a numeric string (`"n_top": "1"`). */
const stringCount = z
  .union([z.number(), z.string().regex(/^\d+$/, "must be a whole number")])
  .transform(Number)
  .pipe(z.number().int().min(1).max(4096));

/** A bucket or object name of the registry service, mapped to an R2 key under `datasets/`. */
const objectName = z.string().min(1).max(250);

/** Body of the registry service's `POST /models`. */
export const registryTrainSchema = z.strictObject({
  id: z.string().regex(MODEL_ID_RE, "id must be a model id (lowercase letters, digits, '-', '_')"),
  s3bucket: objectName,
  training_object: objectName,
  force_update: stringBoolean.optional(),
});

/** Body of the registry service's `GET /prediction`. */
export const registryPredictionSchema = z.strictObject({
  model_id: z.string().regex(MODEL_ID_RE, "model_id must be a model id"),
  text: z.string(),
  n_top: stringCount.optional(),
});

/**
 * The R2 key of the registry service's `s3bucket`/`training_object`: `datasets/<bucket>/<object>`
 * (a bucket is a folder of the one R2 bucket; upload with `PUT /api/v1/datasets/<bucket>/<object>`
 * or `wrangler r2 object put`).
 */
export function registryDatasetKey(bucket: string, object: string): string {
  const key = `datasets/${bucket}/${object}`;
  if (!DATASET_KEY_RE.test(key)) {
    throw new ApiError("invalid_request", "s3bucket and training_object must be path-safe names", {
      extensions: {
        errors: [{ path: "training_object", message: "letters, digits, '.', '_', '-', '/' only" }],
      },
    });
  }
  return key;
}

/** `GET /models`: every model (as `GET /api/v1/models`). */
export const registryListModels: Handler = async (request, env) =>
  reply(ModelListSchema, { models: await listModelSummaries(env, request.state.config.DEFAULT_MODEL) });

/**
 * `POST /models` `{"id", "s3bucket", "training_object", "force_update"?}`: a multiclass training
 * job on the spaCy-style JSON dataset at `datasets/<s3bucket>/<training_object>` (each item's
 * best category is its class) → 202 with the job (follow `status_url`).
 */
export const registryTrain: Handler = async (request, env) => {
  const { config } = request.state;
  const body = validate(registryTrainSchema, await readJsonBody(request, config.MAX_BODY_BYTES));
  const { job } = await createTrainingJob(env, config, request.state.caller?.issuer, {
    id: body.id,
    task: "multiclass",
    dataset: { r2_key: registryDatasetKey(body.s3bucket, body.training_object) },
    text_field: "text",
    label_field: "label",
    // The category sets of this service are small: 2^16 buckets keep the optimizer well within
    // a Worker's memory for any number of categories a job allows.
    featurizer: { buckets: 2 ** 16 },
    force_update: body.force_update ?? false,
    ...(body.force_update && { activate: true }),
  });
  return reply(CreatedJobSchema, job, 202, { location: job.status_url });
};

/** `DELETE /models/<id>`: the model and every related object (as `DELETE /api/v1/models/:id`). */
export const registryDeleteModel: Handler = async (request, env) => {
  const id = String(request.params.id ?? "");
  if (!MODEL_ID_RE.test(id)) throw new ApiError("model_not_found", `no model named '${id.slice(0, 80)}'`);
  return reply(DeletionSchema, { deleted: await deleteAnyModel(env, request.state.config, id) });
};

/**
 * `GET /prediction` with a JSON body `{"model_id", "text", "n_top"?}`: the model's categories, best
 * first (all, or the `n_top` best), as spaCy's `cats` and as `predictions`.
 */
export const registryPrediction: Handler = async (request, env, ctx) => {
  const { config } = request.state;
  const body = validate(registryPredictionSchema, await readJsonBody(request, config.MAX_BODY_BYTES));
  checkTextLimits([body.text], request.state, () => "text");
  const { model, labels, scores } = await classifyTexts(env, ctx, request.state, { model: body.model_id }, [
    body.text,
  ]);
  const predictions = ranked(labels, scores[0] ?? [], body.n_top);
  return reply(RegistryPredictionSchema, {
    model_id: model.id,
    version: model.version,
    cats: Object.fromEntries(predictions.map((p) => [p.label, p.score])),
    predictions,
  });
};

function compatOnlineModel(request: AppRequest, env: Env): Promise<OnlineModel> {
  const { config } = request.state;
  return requireOnlineModel(env, config, config.COMPAT_ONLINE_MODEL);
}

/**
 * The online service's clients read `message` from every answer (`response.json()['message']`), so
 * a refusal of its routes carries the problem's detail as `message` too.
 */
const withMessage =
  (handler: Handler): Handler =>
  async (request, env, ctx) => {
    try {
      return await handler(request, env, ctx);
    } catch (error) {
      if (!(error instanceof ApiError) || "message" in error.extensions) throw error;
      throw new ApiError(error.code, error.message, {
        headers: error.headers,
        extensions: { ...error.extensions, message: error.message },
        cause: error,
      });
    }
  };

/**
 * `POST /sample`: labelled samples in any shape `pandas.DataFrame.from_dict` takes (the client
 * posts `pd.read_csv(path).to_dict()`: columns of `{"<row>": value}`), a list of records, one
 * record, or `text/csv` → the online learner. Answers `{"message", ...counts}`.
 */
export const onlineServiceSample: Handler = withMessage(async (request, env) => {
  const { config } = request.state;
  const model = await compatOnlineModel(request, env);
  const records = await readSampleRecords(request, config, "frame");
  const result = await ingestSamples(env, config, model, records);
  return reply(CompatSampleAnswerSchema, {
    message: `${records.length} sample(s) accepted; the model has learned them`,
    ...result,
  });
});

/**
 * `POST /predict`: one sample, in any `from_dict` shape (the client posts a list of one record) →
 * `{"AccountNumber": "<str>", "score"}` (`?n_top=k`: also `predictions`, the top k with scores).
 * As the online service did, the answer comes from the learner itself, which has learned every
 * sample sent so far (`?source=snapshot` uses the edge snapshot, as the native route does by
 * default). More or fewer than one record, or no sample learned yet: a problem with `message`.
 */
export const onlineServicePredict: Handler = withMessage(async (request, env) => {
  const model = await compatOnlineModel(request, env);
  const { nTop, source } = predictOptions(new URL(request.url), "learner");
  const { config } = request.state;
  const body = await readJsonBody(request, config.MAX_BODY_BYTES);
  const records = frameRecords(body, config.ONLINE_MAX_SAMPLES);
  if (records.length !== 1) {
    const detail = `/predict takes exactly one sample record; the body has ${records.length}`;
    throw new ApiError("invalid_request", detail, {
      extensions: { errors: [{ path: "(body)", message: "exactly one sample record is required" }] },
    });
  }
  const { top, version } = await predictOnline(env, request.state, model, records[0], nTop, source);
  const best = top[0];
  return reply(
    CompatPredictAnswerSchema,
    {
      AccountNumber: best?.AccountNumber ?? null,
      score: best?.score ?? null,
      version,
      ...(nTop !== undefined && { predictions: top }),
    },
    200,
    { "x-model-version": version },
  );
});

/** `GET /getStatus`: the online service's liveness probe, `{"message": "Success!"}`. */
export const onlineServiceStatus: Handler = async () => reply(MessageSchema, { message: "Success!" });

/** `GET /metrics`: the online model's monitoring of its last 1,000 predictions. */
export const onlineServiceMetrics: Handler = async (request, env) =>
  reply(OnlineMetricsSchema, await learnerMetrics(env, (await compatOnlineModel(request, env)).id));

/** Body of the image service's `POST /inference/image` (sent as `text/plain` or JSON). */
export const imageServiceRequestSchema = z.strictObject({
  name: z.string().max(256),
  data: z.string(),
});

/**
 * `POST /inference/image[/]` `{"name", "data": "<base64 image>"}` → `{"uuid"}`: an async prediction
 * with the configured general image model (`DEFAULT_IMAGE_MODEL`); `name` is kept as its request id.
 */
export const imageServiceSubmit: Handler = async (request, env) => {
  const { config } = request.state;
  const body = validate(
    imageServiceRequestSchema,
    await readJsonBody(request, Math.max(config.MAX_BODY_BYTES, MAX_IMAGE_BODY_BYTES)),
  );
  request.state.clientRequestId = body.name;
  const { prediction } = await submitPrediction(env, request.state, {
    model: config.DEFAULT_IMAGE_MODEL,
    input: { image: body.data },
    nTop: 1,
    requestId: body.name,
  });
  return reply(ImageServiceSubmitSchema, { uuid: prediction.id }, 200, {
    location: `/predictions/${prediction.id}`,
  });
};

/**
 * `GET /predictions/<uuid>[/]`: `{"uuid", "prediction": "<top label>"}` when done; before that 202
 * `{"uuid", "status": "queued" | "running", "prediction": null}`; a failed one `{"uuid", "status":
 * "failed", "prediction": null, "error", "error_code"}`. Only its submitter (or an admin) sees it.
 */
export const imageServiceResult: Handler = async (request, env) => {
  const uuid = String(request.params.uuid ?? "");
  const row = await readPrediction(env, request.state, uuid);
  if (row.status === "done") {
    const result = JSON.parse(row.result ?? "{}") as { predictions?: { label: string; score: number }[] };
    const top = result.predictions?.[0];
    return reply(ImageServiceResultSchema, {
      uuid,
      prediction: top?.label ?? null,
      score: top?.score ?? null,
    });
  }
  if (row.status === "failed") {
    return reply(ImageServiceResultSchema, {
      uuid,
      status: "failed",
      prediction: null,
      error: row.error,
      error_code: row.error_code ?? null,
    });
  }
  return reply(ImageServicePendingSchema, { uuid, status: row.status, prediction: null }, 202);
};
