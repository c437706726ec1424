/**
 * Async predictions: D1 rows, the stored input, and running one in the queue consumer.
 */
import type { z } from "zod";
import type { PredictionResultSchema, PredictionSchema } from "../answers";
import type { Config } from "../config";
import type { FailureCode, PredictionRow } from "../contracts/rows";
import { recordLiveProfile } from "../drift/live";
import { ApiError } from "../errors";
import { textAnswer } from "../inference/answers";
import { type Classification, ranked, scoreImageInputs, scoreTextInputs } from "../inference/score";
import type { Logger } from "../log";
import { subjectFinished } from "../webhooks/deliveries";
import { logPredictions, predictionLogEntries } from "./log";
import { shadowAfter } from "./shadow";

/** A redelivered prediction whose first run may still be going is taken over after this long. */
const PREDICTION_LEASE_MS = 2 * 60_000;

/** The stored input of an async prediction (`inputs/<id>` in R2). */
export interface PredictionInput {
  text?: string;
  texts?: string[];
  /** Base64 image (for image models). */
  image?: string;
}

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

/**
 * Scores a stored input through the scoring core (every label's score, logged as such) and shapes
 * the result as the API shows it: the native text answer, or an image's labels best first cut to
 * the prediction's `n_top`.
 */
async function score(
  env: Env,
  config: Config,
  row: PredictionRow,
  input: PredictionInput,
): Promise<{ scored: Classification; result: unknown }> {
  const choice = { model: row.model_id, version: row.model_version };
  const nTop = row.n_top ?? undefined;
  if (input.image !== undefined) {
    const scored = await scoreImageInputs(env, config, choice, [{ base64: input.image }]);
    return { scored, result: { predictions: ranked(scored.labels, scored.scores[0] ?? [], nTop) } };
  }
  const texts = input.texts ?? [input.text ?? ""];
  const scored = await scoreTextInputs(env, config, choice, texts);
  const result = textAnswer(scored.labels, scored.scores, nTop, input.texts !== undefined, scored.thresholds);
  return { scored, result };
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
    const { scored, result } = await score(env, config, row, input);
    const written = await db
      .prepare(
        `UPDATE predictions SET status = 'done', result = ?1, error = NULL, finished_at = ?2, updated_at = ?2
         WHERE id = ?3 AND status = 'running'`,
      )
      .bind(JSON.stringify(result), Date.now(), id)
      .run();
    if (written.meta.changes === 1) {
      // Shadow versions score a sampled async prediction too, after its result is stored.
      const shadowInputs =
        input.image === undefined
          ? { texts: input.texts ?? [input.text ?? ""] }
          : { images: [{ base64: input.image }] };
      shadowAfter(env, ctx, config, scored, shadowInputs, logger);
      // Once per prediction (a redelivery that lost the race adds nothing), like the sync path.
      recordLiveProfile(ctx, env, config, scored, (error, items) =>
        logger.log("error", "drift_record_failed", {
          model: scored.model.id,
          inputs: items,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
      await subjectFinished(env, id, logger);
    }
    if (written.meta.changes === 1 && config.PREDICTION_LOG) {
      const entries = predictionLogEntries(
        {
          kind: "async",
          caller: row.caller,
          model: scored.model,
          requestId: row.request_id,
          predictionId: id,
          latencyMs: Date.now() - started,
          labels: scored.labels,
          scores: scored.scores,
          inputs: input.texts ?? (input.text === undefined ? undefined : [input.text]),
        },
        config.PREDICTION_LOG_INPUTS,
      );
      logPredictions(ctx, db, entries, logger);
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
