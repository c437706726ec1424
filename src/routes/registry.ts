/**
 * The model registry API: list and show models, upload a version, activate (or roll back), delete,
 * and start a training job (`POST /api/v1/models`).
 */
import * as z from "zod";
import {
  ActivationSchema,
  CreatedJobSchema,
  CreatedOnlineModelSchema,
  DeletionSchema,
  ModelDetailSchema,
  ModelListSchema,
  UploadedVersionSchema,
} from "../answers";
import { ownerScope } from "../auth/scope";
import type { AppRequest, Handler } from "../context";
import { MODEL_ID_RE, MODEL_VERSION_RE } from "../contracts/manifest";
import { modelDriftStatus } from "../drift/report";
import { ApiError } from "../errors";
import { readBodyBytes, readJsonBody, reply, validate } from "../http";
import { idempotencyKey, idempotentRequest, REPLAYED_HEADERS } from "../idempotency";
import { createTrainingJob } from "../jobs/create";
import { jobRequestSchema, MAX_INLINE_ROWS } from "../jobs/spec";
import { createOnlineModel, deleteAnyModel, onlineModelRequestSchema } from "../online/online-models";
import { activateVersion } from "../registry/activate";
import { listModelSummaries, modelDetail } from "../registry/list";
import { readModelUpload, uploadModelVersion } from "../registry/upload";

/** Multipart overhead allowed on top of `MAX_MODEL_BYTES` for an upload (manifest, part headers). */
const UPLOAD_OVERHEAD_BYTES = 256 * 1024;

function modelId(request: AppRequest): string {
  const id = request.params.id ?? "";
  if (!MODEL_ID_RE.test(id)) throw new ApiError("model_not_found", `no model named '${id.slice(0, 80)}'`);
  return id;
}

/** `GET /api/v1/models`: every model with its active version's task, labels, metrics and size. */
export const listModels: Handler = async (request, env) =>
  reply(ModelListSchema, { models: await listModelSummaries(env, request.state.config.DEFAULT_MODEL) });

/** `GET /api/v1/models/:id`: the model, all its versions, its latest jobs and its drift status. */
export const getModel: Handler = async (request, env) => {
  const { config, logger } = request.state;
  const detail = await modelDetail(env, config.DEFAULT_MODEL, modelId(request), ownerScope(request.state));
  // The active version's drift status (src/drift/report.ts): "unknown" when it cannot be told;
  // and where its reference comes from (training, a live baseline, or pending).
  const drift =
    detail.active_version === null ? undefined : await modelDriftStatus(env, config, detail.id, logger);
  return reply(ModelDetailSchema, {
    ...detail,
    ...(drift && { drift: drift.drift, ...(drift.reference && { drift_reference: drift.reference }) }),
  });
};

export const versionUploadQuerySchema = z.object({
  activate: z.enum(["true", "false"]).optional().describe("activate the version once stored"),
});

/**
 * `PUT /api/v1/models/:id/versions/:version`: uploads a version as `multipart/form-data` with a
 * `manifest` part (JSON) and a `model` part (the ONNX bytes); `?activate=true` activates it.
 * The manifest's `id`/`version` default to the URL's (and must match it); `sha256`, `size_bytes`
 * and `created_at` default to the bytes' and now. 201 when stored, 200 when that exact version
 * (same sha256) already was.
 */
export const putVersion: Handler = async (request, env) => {
  const { config } = request.state;
  const id = request.params.id ?? "";
  const version = request.params.version ?? "";
  const problems = [
    ...(MODEL_ID_RE.test(id) ? [] : [{ path: "id", message: "must be a model id" }]),
    ...(MODEL_VERSION_RE.test(version) ? [] : [{ path: "version", message: "must be a model version" }]),
  ];
  if (problems.length > 0) {
    throw new ApiError("invalid_request", problems.map((p) => `${p.path}: ${p.message}`).join("; "), {
      extensions: { errors: problems },
    });
  }
  const activate =
    validate(versionUploadQuerySchema, { activate: request.query.activate }).activate === "true";
  const type = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\s*;/i.test(type)) {
    throw new ApiError(
      "unsupported_media_type",
      "upload a model as multipart/form-data with a 'manifest' part (JSON) and a 'model' part (ONNX bytes)",
    );
  }
  const limit = config.MAX_MODEL_BYTES + UPLOAD_OVERHEAD_BYTES;
  const raw = await readBodyBytes(
    request,
    limit,
    () =>
      new ApiError(
        "payload_too_large",
        `upload exceeds ${limit} bytes (MAX_MODEL_BYTES plus multipart overhead)`,
        { extensions: { limit_bytes: limit } },
      ),
  );
  const { existed, ...uploaded } = await uploadModelVersion(
    env,
    { id, version, activate },
    await readModelUpload(raw, type),
  );
  request.state.model = { id, version };
  return reply(UploadedVersionSchema, uploaded, existed ? 200 : 201, { location: `/api/v1/models/${id}` });
};

export const activateSchema = z.strictObject({
  version: z.string().regex(MODEL_VERSION_RE, "version must be a model version"),
});

/** `POST /api/v1/models/:id/activate` `{"version"}`: switches serving to that version (or back). */
export const activate: Handler = async (request, env) => {
  const { config } = request.state;
  const id = modelId(request);
  const body = validate(activateSchema, await readJsonBody(request, config.MAX_BODY_BYTES));
  const result = await activateVersion(env, config, id, body.version);
  request.state.model = { id, version: body.version };
  return reply(ActivationSchema, { ...result, effective_within_ms: config.ACTIVE_POINTER_TTL_MS });
};

/** `DELETE /api/v1/models/:id`: removes the model and every related object (see `deleteAnyModel`). */
export const removeModel: Handler = async (request, env) =>
  reply(DeletionSchema, { deleted: await deleteAnyModel(env, request.state.config, modelId(request)) });

/**
 * `POST /api/v1/models`: queues a training job (body: `jobRequestSchema`, see `createTrainingJob`)
 * → 202 with the job id.
 */
export const createModel: Handler = async (request, env) => {
  const { config } = request.state;
  const idempotency = idempotencyKey(request.headers);
  const raw = await readJsonBody(request, Math.max(config.MAX_BODY_BYTES, config.MAX_DATASET_BYTES));
  const rows = (raw as { dataset?: { rows?: unknown } } | null)?.dataset?.rows;
  if (Array.isArray(rows) && rows.length > MAX_INLINE_ROWS) {
    throw new ApiError(
      "dataset_too_large",
      `dataset.rows holds ${rows.length} rows; the inline limit is ${MAX_INLINE_ROWS} (put larger datasets in R2 under datasets/)`,
      {
        extensions: { limit_rows: MAX_INLINE_ROWS },
      },
    );
  }
  if ((raw as { task?: unknown } | null)?.task === "online") {
    const online = validate(onlineModelRequestSchema, raw);
    const created = await createOnlineModel(env, config, request.state.caller?.issuer, online);
    return reply(CreatedOnlineModelSchema, created, 201, {
      location: `/api/v1/models/${created.id}/metrics`,
    });
  }
  const body = validate(jobRequestSchema, raw);
  const keyed = await idempotentRequest(idempotency, request.state.caller?.issuer ?? null, body);
  const { job, replayed } = await createTrainingJob(env, config, request.state.caller?.issuer, body, keyed);
  return reply(CreatedJobSchema, job, 202, { location: job.status_url, ...(replayed && REPLAYED_HEADERS) });
};
