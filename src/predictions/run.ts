/**
 * Async predictions: D1 rows, the stored input, and running one in the queue consumer.
 */
import type { z } from "zod";
import type { PredictionResultSchema, PredictionSchema } from "../answers";
import type { Config } from "../config";
import { ApiError } from "../errors";
import { textAnswer } from "../inference/classify";
import { scoreTexts, withModel } from "../inference/engine";
import { scoreImageInput } from "../inference/image";
import { inputMismatch, modelInput } from "../inference/kinds";
import type { ModelManifest, TextInputManifest } from "../inference/manifest";
import type { LoadedModel } from "../inference/session-cache";
import type { Logger } from "../log";
import { subjectFinished } from "../webhooks/deliveries";
import { logPredictions } from "./log";

/** A redelivered prediction whose first run may still be going is taken over after this long. */
const PREDICTION_LEASE_MS = 2 * 60_000;

/** A `predictions` row. */
/** The columns async predictions and training jobs share: attempts, owner, times, sweep, idempotency. */
export interface QueuedWorkColumns {
  attempts: number;
  caller: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** When the state last moved (see migrations/0002). */
  updated_at: number | null;
  /** Re-enqueues by the stuck-work sweep. */
  sweeps: number;
  error_code: FailureCode | null;
  idempotency_key: string | null;
  request_hash: string | null;
}

export interface PredictionRow extends QueuedWorkColumns {
  id: string;
  model_id: string;
  model_version: string;
  status: "queued" | "running" | "done" | "failed";
  input_key: string;
  request_id: string | null;
  n_top: number | null;
  result: string | null;
  error: string | null;
}

/**
 * Why a job or prediction failed: a failure retrying cannot fix, the queue's retries used up (the
 * dead-letter consumer), or no progress through every re-enqueue of the stuck-work sweep.
 */
export type FailureCode = "invalid" | "retries_exhausted" | "stuck";

/** The stored input of an async prediction (`inputs/<id>` in R2). */
export interface PredictionInput {
  text?: string;
  texts?: string[];
  /** Base64 image (for image models). */
  image?: string;
}

/** R2 key of a prediction's input. */
export const inputKey = (id: string): string => `inputs/${id}`;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A prediction as `GET /api/v1/predictions/:id` shows it. */
export function predictionView(row: PredictionRow): z.input<typeof PredictionSchema> {
  return {
    id: row.id,
    status: row.status,
    ...(row.result === null
      ? {}
      : { result: JSON.parse(row.result) as z.input<typeof PredictionResultSchema> }),
    ...(row.error === null ? {} : { error: row.error }),
    ...(row.error_code === null ? {} : { error_code: row.error_code }),
    model: { id: row.model_id, version: row.model_version },
    ...(row.request_id === null ? {} : { request_id: JSON.parse(row.request_id) as string | number }),
    attempts: row.attempts,
    created_at: iso(row.created_at),
    finished_at: iso(row.finished_at),
  };
}

/** A failure retrying cannot fix. */
class PermanentError extends Error {}

function textModel(m: LoadedModel<ModelManifest>): LoadedModel<TextInputManifest> {
  if (modelInput(m.meta) !== "text") throw new PermanentError(inputMismatch(m.meta, "text").message);
  return m as LoadedModel<TextInputManifest>;
}

/** Scores a stored input: labels, one score vector per item, and the result as the API shows it. */
async function score(
  env: Env,
  config: Config,
  row: PredictionRow,
  input: PredictionInput,
): Promise<{ labels: readonly string[]; scores: ArrayLike<number>[]; result: unknown }> {
  if (input.image !== undefined) {
    const { predictions } = await scoreImageInput(env.MODELS, config, {
      model: row.model_id,
      version: row.model_version,
      imageBase64: input.image,
      nTop: row.n_top ?? undefined,
    });
    return {
      labels: predictions.map((p) => p.label),
      scores: [predictions.map((p) => p.score)],
      result: { predictions },
    };
  }
  const texts = input.texts ?? [input.text ?? ""];
  const { labels, scores, thresholds } = await withModel(
    env.MODELS,
    config,
    row.model_id,
    row.model_version,
    async (m) => {
      const text = textModel(m);
      return {
        labels: m.meta.labels,
        scores: await scoreTexts(text, texts),
        thresholds: text.meta.thresholds,
      };
    },
  );
  const result = textAnswer(labels, scores, row.n_top ?? undefined, input.texts !== undefined, thresholds);
  return { labels, scores, result };
}

/**
 * Runs prediction `id` for its `attempt`-th delivery and stores the result in D1. The claim
 * (`queued` → `running`; a `running` one only on a redelivery or after its lease) and the final
 * write (`running` → `done`, exactly once) are conditional updates, so redelivery or duplicate
 * delivery never produces a second or different result. Unknown model/version, a missing input or
 * an input the model cannot take fail the prediction; other errors are retried (the dead-letter
 * consumer fails it after the queue's retries).
 */
export async function runPrediction(
  env: Env,
  config: Config,
  ctx: ExecutionContext,
  id: string,
  attempt: number,
  logger: Logger,
): Promise<"ack" | "retry"> {
  const db = env.DB;
  const now = Date.now();
  const row = await db
    .prepare(
      `UPDATE predictions SET status = 'running', attempts = attempts + 1, started_at = ?1, updated_at = ?1
       WHERE id = ?2 AND (status = 'queued' OR (status = 'running' AND (?3 > 1 OR started_at < ?4)))
       RETURNING *`,
    )
    .bind(now, id, attempt, now - PREDICTION_LEASE_MS)
    .first<PredictionRow>();
  if (!row) return "ack";
  try {
    const object = await env.MODELS.get(row.input_key);
    if (!object) throw new PermanentError("the prediction's input is gone (model deleted or input purged)");
    const input = (await object.json()) as PredictionInput;
    const started = Date.now();
    const { labels, scores, result } = await score(env, config, row, input);
    const texts = input.texts ?? (input.text === undefined ? [] : [input.text]);
    const written = await db
      .prepare(
        `UPDATE predictions SET status = 'done', result = ?1, error = NULL, finished_at = ?2, updated_at = ?2
         WHERE id = ?3 AND status = 'running'`,
      )
      .bind(JSON.stringify(result), Date.now(), id)
      .run();
    if (written.meta.changes === 1) await subjectFinished(env, id, logger);
    if (written.meta.changes === 1 && config.PREDICTION_LOG) {
      const latencyMs = Date.now() - started;
      logPredictions(
        ctx,
        db,
        scores.map((s, item) => ({
          at: Date.now(),
          kind: "async" as const,
          caller: row.caller,
          modelId: row.model_id,
          modelVersion: row.model_version,
          requestId: row.request_id,
          predictionId: id,
          item,
          latencyMs,
          labels,
          scores: s,
          input: config.PREDICTION_LOG_INPUTS ? (texts[item] ?? null) : null,
        })),
        logger,
      );
    }
    return "ack";
  } catch (error) {
    // Unknown model/version, a bad image, the wrong kind of input: retrying cannot help.
    const permanent = error instanceof PermanentError || (error instanceof ApiError && error.status < 500);
    const message = error instanceof Error ? error.message : String(error);
    if (permanent) {
      await failPrediction(env, id, message, "invalid");
      return "ack";
    }
    logger.log("warn", "prediction_attempt_failed", {
      prediction_id: id,
      attempt,
      error: message.slice(0, 300),
    });
    await db
      .prepare(
        "UPDATE predictions SET status = 'queued', error = ?, updated_at = ? WHERE id = ? AND status = 'running'",
      )
      .bind(`attempt ${attempt} failed (will retry): ${message.slice(0, 500)}`, Date.now(), id)
      .run();
    return "retry";
  }
}

/** Marks a prediction failed with `error` and `code`, unless it already finished; whether it did. */
export async function failPrediction(
  env: Env,
  id: string,
  error: string,
  code: FailureCode,
): Promise<boolean> {
  const done = await env.DB.prepare(
    `UPDATE predictions SET status = 'failed', error = ?1, error_code = ?2, finished_at = ?3, updated_at = ?3
     WHERE id = ?4 AND status IN ('queued', 'running')`,
  )
    .bind(error.slice(0, 2000), code, Date.now(), id)
    .run();
  if (done.meta.changes !== 1) return false;
  await subjectFinished(env, id);
  return true;
}
