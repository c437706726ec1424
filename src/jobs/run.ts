/**
 * Running a training job in the queue consumer: the same trainer and exporter (`exportModel`) as
 * `npm run train`, the same split rule and validation fold(s) (`trainWithValidation`), then
 * `publishModelVersion`.
 */
import type { Config } from "../config";
import { textManifestSchema } from "../contracts/manifest";
import { jobRowsKey, r2Keys } from "../contracts/r2-keys";
import type { FailureCode, JobRow } from "../contracts/rows";
import { buildProfile } from "../drift/profile";
import { ApiError } from "../errors";
import { featurize, type SparseFeatures } from "../featurizer/text";
import { feedbackRecords } from "../feedback/read";
import type { Logger } from "../log";
import { exportModel } from "../onnx/text";
import { publishModelVersion } from "../registry/publish";
import { isTestRow, validationFoldOf } from "../training/folds";
import { scoreFeatures } from "../training/linear-model";
import { trainWithValidation } from "../training/select";
import { subjectFinished } from "../webhooks/deliveries";
import { DatasetError, formatOf, parseRecords, readDatasetText, toTrainingData } from "./dataset";
import {
  columnsOf,
  featureBytes,
  JOB_SEED,
  jobFeaturizer,
  jobHyperparameters,
  optimizerStateBytes,
  type StoredJobSpec,
  TRAINING_MEMORY_BUDGET,
  whatFits,
} from "./spec";

/** A job whose consumer died is taken over by a duplicate delivery only after this long. */
const JOB_LEASE_MS = 15 * 60_000;

/** What the consumer does with a job's message. */
export type Outcome = "ack" | "retry";

/** A failure that retrying cannot fix (bad dataset, bad hyperparameters, refused model). */
class PermanentError extends Error {}

const MiB = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/**
 * Runs job `jobId` for a message delivered for the `attempt`-th time. Claims the job (a `queued`
 * job; or a `running` one when this is a redelivery, i.e. the previous run died, or its lease
 * expired), trains, publishes, and records the outcome. Idempotent: a finished or deleted job is
 * acknowledged untouched, and a duplicate delivery of a job running elsewhere is dropped.
 * Transient failures (storage) are recorded and retried; after the queue's retries the
 * dead-letter consumer marks the job failed.
 */
export async function runJob(
  env: Env,
  config: Config,
  jobId: string,
  attempt: number,
  logger: Logger,
): Promise<Outcome> {
  const db = env.DB;
  const now = Date.now();
  const claimed = await db
    .prepare(
      `UPDATE jobs SET status = 'running', stage = 'loading', progress = 0.05, attempts = attempts + 1,
         started_at = ?1, updated_at = ?1, error = NULL
       WHERE id = ?2 AND (status = 'queued' OR (status = 'running' AND (?3 > 1 OR started_at < ?4)))
       RETURNING *`,
    )
    .bind(now, jobId, attempt, now - JOB_LEASE_MS)
    .first<JobRow>();
  if (!claimed) return "ack";
  const spec = JSON.parse(claimed.spec) as StoredJobSpec;
  const stage = (name: string, progress: number) =>
    db
      .prepare("UPDATE jobs SET stage = ?, progress = ?, updated_at = ? WHERE id = ? AND status = 'running'")
      .bind(name, progress, Date.now(), jobId)
      .run();
  try {
    const records = await loadRecords(env, config, jobId, spec);
    // Labelled feedback of the model (`feedback: true`), after the dataset's rows, within MAX_DATASET_ROWS.
    const feedback = spec.feedback
      ? await feedbackRecords(db, claimed.model_id, spec, config.MAX_DATASET_ROWS - records.length)
      : [];
    records.push(...feedback);
    const hyperparameters = jobHyperparameters(spec);
    const data = (() => {
      try {
        return toTrainingData(records, spec, (i) => !isTestRow(i));
      } catch (error) {
        throw error instanceof DatasetError ? new PermanentError(error.message) : error;
      }
    })();
    const train = data.rows.filter((_, i) => !isTestRow(i));
    const test = data.rows.filter((_, i) => isTestRow(i));
    if (test.length === 0)
      throw new PermanentError(
        `dataset has ${data.rows.length} rows; at least 5 are needed for a held-out split`,
      );
    // Default buckets are sized from the task: what the featurized rows leave of the budget.
    const columns = columnsOf(spec.task, data.labels.length);
    const features = featureBytes(
      data.rows.map((r) => r.text),
      jobFeaturizer(spec),
    );
    const featurizer = jobFeaturizer(spec, columns, TRAINING_MEMORY_BUDGET - features);
    const memory = optimizerStateBytes(featurizer.buckets, columns, hyperparameters) + features;
    if (memory > TRAINING_MEMORY_BUDGET) {
      const fixes = whatFits(featurizer.buckets, columns, hyperparameters, TRAINING_MEMORY_BUDGET - features);
      throw new PermanentError(
        `training would need about ${MiB(memory)} (optimizer state for ${featurizer.buckets} buckets × ${columns} columns + ${MiB(features)} of features), more than the Worker budget of ` +
          `${MiB(TRAINING_MEMORY_BUDGET)}: ` +
          (fixes.length ? `these fit: ${fixes.join(", ")}` : "use fewer or shorter rows"),
      );
    }
    await stage("training", 0.2);
    let result: ReturnType<typeof trainWithValidation>;
    try {
      // The protocol of `npm run train`: calibration and thresholds come from the validation fold
      // (data rows i % 5 == 3) or 4-fold CV's out-of-fold scores, the final model is refitted on the
      // whole train split, and the test split is scored once.
      const folds = spec.validation_folds ?? 1;
      result = trainWithValidation({
        trainRows: train,
        foldOf: data.rows.flatMap((_, i) => (isTestRow(i) ? [] : [validationFoldOf(i, folds)])),
        folds,
        testRows: test,
        task: spec.task,
        labels: data.labels,
        spec: featurizer,
        hyperparameters,
        seed: JOB_SEED,
      });
    } catch (error) {
      throw new PermanentError(`training failed: ${(error as Error).message}`);
    }
    await stage("exporting", 0.8);
    const metrics: Record<string, number> = { ...result.metrics };
    metrics.train_rows = train.length;
    if (spec.feedback) metrics.feedback_rows = feedback.length;
    metrics.training_ms = result.trainingMs;
    const exported = await exportModel(result.quantized, {
      id: claimed.model_id,
      version: claimed.version,
      description: spec.description ?? `trained by job ${jobId}`,
      metrics,
    });
    const onnx = exported.onnx;
    const manifest = textManifestSchema.parse({
      ...exported.manifest,
      network: "linear",
      ...(result.thresholds && { thresholds: result.thresholds }),
    });
    // The version's reference profile for drift (docs/drift.md): the train split's inputs and the
    // int8 model's scores on them (the exported graph's arithmetic). Written before the version is
    // published, so a served version never lacks it.
    const trainFeatures = train.map((row) => featurize(row.text, featurizer));
    const profile = buildProfile({
      model: { id: claimed.model_id, version: claimed.version },
      source: `train split of job ${jobId}'s dataset (${train.length} rows; row % 5 == 4 excluded)`,
      labels: manifest.labels,
      texts: train.map((row, i) => ({ text: row.text, ids: (trainFeatures[i] as SparseFeatures).ids })),
      scores: trainFeatures.map((f) => scoreFeatures(result.quantized, f)),
      buckets: featurizer.buckets,
    });
    await env.MODELS.put(r2Keys.profile(claimed.model_id, claimed.version), JSON.stringify(profile));
    await stage("publishing", 0.9);
    // A model deleted while this job trained takes its jobs with it: do not resurrect it.
    const still = await db
      .prepare("SELECT status FROM jobs WHERE id = ?")
      .bind(jobId)
      .first<{ status: string }>();
    if (still?.status !== "running") return "ack";
    try {
      await publishModelVersion(env, { manifest, bytes: onnx, activate: spec.activate, source: "training" });
    } catch (error) {
      if (error instanceof ApiError && error.status < 500)
        throw new PermanentError(`publishing failed: ${error.message}`);
      throw error;
    }
    const succeeded = await db
      .prepare(
        `UPDATE jobs SET status = 'succeeded', stage = 'done', progress = 1, metrics = ?1, finished_at = ?2,
           updated_at = ?2, error = NULL
         WHERE id = ?3 AND status = 'running'`,
      )
      .bind(JSON.stringify(manifest.metrics), Date.now(), jobId)
      .run();
    if (succeeded.meta.changes === 1) await subjectFinished(env, jobId, logger);
    await env.MODELS.delete(jobRowsKey(jobId));
    logger.log("info", "job_succeeded", {
      job_id: jobId,
      model: claimed.model_id,
      model_version: claimed.version,
      rows: data.rows.length,
      feedback_rows: feedback.length,
      training_ms: result.trainingMs,
      duration_ms: Date.now() - now,
    });
    return "ack";
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof PermanentError) {
      await failJob(env, jobId, message, "invalid");
      logger.log("warn", "job_failed", { job_id: jobId, model: claimed.model_id, error: message });
      return "ack";
    }
    logger.log("warn", "job_attempt_failed", { job_id: jobId, attempt, error: message.slice(0, 300) });
    await db
      .prepare(
        "UPDATE jobs SET status = 'queued', stage = 'retrying', error = ?, updated_at = ? WHERE id = ? AND status = 'running'",
      )
      .bind(`attempt ${attempt} failed (will retry): ${message.slice(0, 500)}`, Date.now(), jobId)
      .run();
    return "retry";
  }
}

/**
 * Marks a job failed with `error` and `code` (unless it already finished) and drops its inline
 * rows; whether it did.
 */
export async function failJob(env: Env, jobId: string, error: string, code: FailureCode): Promise<boolean> {
  const done = await env.DB.prepare(
    `UPDATE jobs SET status = 'failed', stage = 'failed', error = ?1, error_code = ?2, finished_at = ?3,
       updated_at = ?3
     WHERE id = ?4 AND status IN ('queued', 'running')`,
  )
    .bind(error.slice(0, 2000), code, Date.now(), jobId)
    .run();
  if (done.meta.changes !== 1) return false;
  await env.MODELS.delete(jobRowsKey(jobId));
  await subjectFinished(env, jobId);
  return true;
}

async function loadRecords(
  env: Env,
  config: Config,
  jobId: string,
  spec: StoredJobSpec,
): Promise<Record<string, unknown>[]> {
  if ("inline_rows" in spec.dataset) {
    const object = await env.MODELS.get(jobRowsKey(jobId));
    if (!object) throw new PermanentError("the job's inline rows are gone (was the model deleted?)");
    return (await object.json()) as Record<string, unknown>[];
  }
  const { r2_key: key, format } = spec.dataset;
  const object = await env.MODELS.get(key);
  if (!object) throw new PermanentError(`no dataset at '${key}'`);
  const kind = formatOf(key, format);
  if (!kind)
    throw new PermanentError(
      `cannot tell the format of '${key}': name it .csv, .jsonl or .json, or set dataset.format`,
    );
  try {
    const records = parseRecords(await readDatasetText(object, config.MAX_DATASET_BYTES), kind);
    if (records.length > config.MAX_DATASET_ROWS) {
      throw new DatasetError(
        `dataset has ${records.length} rows; the limit is ${config.MAX_DATASET_ROWS} (MAX_DATASET_ROWS)`,
      );
    }
    return records;
  } catch (error) {
    throw error instanceof DatasetError ? new PermanentError(error.message) : error;
  }
}
