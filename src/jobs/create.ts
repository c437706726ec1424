/**
 * Creating a training job, shared by `POST /api/v1/models` and the registry service's
 * compatibility route (`POST /models`): checks that need no queue (memory estimate, the dataset
 * object, model existence and version), the job row (one queued or running job per model), the
 * inline rows in R2 and the queue message.
 */
import type { Config } from "../config";
import { d1 } from "../contracts/d1";
import { jobRowsKey } from "../contracts/r2-keys";
import type { JobRow } from "../contracts/rows";
import { ApiError } from "../errors";
import { findReplay, type IdempotentRequest } from "../idempotency";
import { getModelRow, getVersionRows } from "../registry/db";
import { ensureModelImported } from "../registry/import";
import { insertDelivery } from "../webhooks/deliveries";
import { checkCallbackUrl } from "../webhooks/destination";
import {
  columnsOf,
  type JobRequest,
  jobFeaturizer,
  jobHyperparameters,
  optimizerStateBytes,
  type StoredJobSpec,
  TRAINING_MEMORY_BUDGET,
  whatFits,
} from "./spec";

/** A queued job, as `POST /api/v1/models` answers it (202). */
export interface CreatedJob {
  job_id: string;
  status: "queued";
  status_url: string;
  model: { id: string; version: string };
  activate: boolean;
}

/**
 * Queues a training job for a validated request. An existing model needs `force_update` (409
 * `model_exists`); one job per model at a time (409 `job_in_progress`). Inline rows are stored in
 * R2 (`jobs/<job>/rows.json`); the queue message carries only the job id.
 */
export async function createTrainingJob(
  env: Env,
  config: Config,
  caller: string | undefined,
  body: JobRequest,
  keyed?: IdempotentRequest,
): Promise<{ job: CreatedJob; replayed: boolean }> {
  const replay = async (): Promise<{ job: CreatedJob; replayed: boolean } | undefined> => {
    const row = await findReplay<JobRow>(env.DB, "jobs", keyed);
    if (!row) return undefined;
    const spec = JSON.parse(row.spec) as StoredJobSpec;
    return { job: createdJob(row.id, row.model_id, row.version, spec.activate), replayed: true };
  };
  // A key seen before answers as it did (before `model_exists`: its own job created the model).
  const replayed = await replay();
  if (replayed) return replayed;
  const hp = jobHyperparameters(body);
  const labelCount =
    body.task === "multilabel" ? (body.label_fields?.length ?? 1) : (body.labels?.length ?? 2);
  const columns = columnsOf(body.task, labelCount);
  // Default buckets are sized from the task (jobFeaturizer); explicit ones must fit as asked.
  const buckets = jobFeaturizer(body, columns).buckets;
  const state = optimizerStateBytes(buckets, columns, hp);
  if (state > TRAINING_MEMORY_BUDGET) {
    const fixes = whatFits(buckets, columns, hp, TRAINING_MEMORY_BUDGET);
    throw new ApiError(
      "invalid_request",
      `the optimizer would need about ${Math.ceil(state / 2 ** 20)} MiB for ${buckets} buckets × ${columns} columns, more than the training budget of ${TRAINING_MEMORY_BUDGET / 2 ** 20} MiB` +
        (fixes.length ? `; these fit: ${fixes.join(", ")}` : `; no setting fits ${columns} columns`) +
        (body.featurizer?.buckets === undefined
          ? ""
          : "; or leave featurizer.buckets out to size it from the task"),
      {
        extensions: {
          errors: [{ path: "featurizer.buckets", message: "too large for a Worker's memory" }],
          fits: fixes,
        },
      },
    );
  }
  if ("r2_key" in body.dataset) {
    const head = await env.MODELS.head(body.dataset.r2_key);
    if (!head)
      throw new ApiError("invalid_dataset", `no dataset at '${body.dataset.r2_key}' in the MODELS bucket`);
    if (head.size > config.MAX_DATASET_BYTES) {
      throw new ApiError(
        "dataset_too_large",
        `'${body.dataset.r2_key}' is ${head.size} bytes; the limit is ${config.MAX_DATASET_BYTES}`,
        {
          extensions: { limit_bytes: config.MAX_DATASET_BYTES },
        },
      );
    }
  }
  await ensureModelImported(env, body.id);
  const existing = await getModelRow(env.DB, body.id);
  if (existing && !body.force_update) {
    throw new ApiError(
      "model_exists",
      `model '${body.id}' exists; set force_update to train a new version of it`,
    );
  }
  const versions = existing ? await getVersionRows(env.DB, body.id) : [];
  const version =
    body.version ??
    String(1 + Math.max(0, ...versions.map((v) => Number(v.version)).filter(Number.isInteger)));
  if (versions.some((v) => v.version === version)) {
    throw new ApiError("model_version_exists", `model '${body.id}' already has a version '${version}'`);
  }
  const callback =
    body.callback_url === undefined ? undefined : checkCallbackUrl(body.callback_url, caller, config);
  const jobId = crypto.randomUUID();
  const { dataset, ...rest } = body;
  const spec: StoredJobSpec = {
    ...rest,
    activate: body.activate ?? !existing,
    dataset: "rows" in dataset ? { inline_rows: dataset.rows.length } : dataset,
  };
  if ("rows" in dataset) await env.MODELS.put(jobRowsKey(jobId), JSON.stringify(dataset.rows));
  const now = Date.now();
  const inserted = await d1("create job", () =>
    env.DB.prepare(
      `INSERT INTO jobs (id, model_id, version, status, stage, progress, spec, caller, created_at, updated_at,
         idempotency_key, request_hash)
       SELECT ?1, ?2, ?3, 'queued', 'queued', 0, ?4, ?5, ?6, ?6, ?7, ?8
       WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE model_id = ?2 AND status IN ('queued', 'running'))
       ON CONFLICT DO NOTHING`,
    )
      .bind(
        jobId,
        body.id,
        version,
        JSON.stringify(spec),
        caller ?? null,
        now,
        keyed?.key ?? null,
        keyed?.fingerprint ?? null,
      )
      .run(),
  ).catch(async (error: unknown) => {
    await env.MODELS.delete(jobRowsKey(jobId));
    throw error;
  });
  if (inserted.meta.changes !== 1) {
    await env.MODELS.delete(jobRowsKey(jobId));
    // Another submit with this key may have won the race (its job is the one queued).
    const won = await replay();
    if (won) return won;
    throw new ApiError(
      "job_in_progress",
      `a training job for model '${body.id}' is already queued or running`,
    );
  }
  try {
    if (callback) await insertDelivery(env.DB, "job", jobId, caller, callback, now).run();
    await env.JOBS_QUEUE.send({ kind: "job", id: jobId });
  } catch (cause) {
    await env.DB.batch([
      env.DB.prepare("DELETE FROM jobs WHERE id = ?").bind(jobId),
      env.DB.prepare("DELETE FROM webhook_deliveries WHERE subject_id = ?").bind(jobId),
    ]);
    await env.MODELS.delete(jobRowsKey(jobId));
    throw new ApiError("queue_unavailable", "the training queue is unavailable; retry later", {
      cause,
      headers: { "retry-after": "5" },
    });
  }
  return { job: createdJob(jobId, body.id, version, spec.activate), replayed: false };
}

/** The 202 body of a queued training job (also what a replayed Idempotency-Key answers). */
function createdJob(jobId: string, modelId: string, version: string, activate: boolean): CreatedJob {
  return {
    job_id: jobId,
    status: "queued",
    status_url: `/api/v1/jobs/${jobId}`,
    model: { id: modelId, version },
    activate,
  };
}
