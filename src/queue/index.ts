/**
 * The Worker's `queue` handler: training jobs and async predictions, and their dead-letter queue.
 * A message carries only `{kind, id}` (plus the input key of a prediction); everything else is in
 * D1 and R2. Queues whose name ends in `-dlq` are dead-letter queues (wrangler.toml).
 */

import { loadConfig } from "../config";
import { queueMessageSchema } from "../contracts/queue";
import type { JobRow, PredictionRow } from "../contracts/rows";
import { failJob, runJob } from "../jobs/run";
import { jobView } from "../jobs/store";
import { createLogger } from "../log";
import { failPrediction, predictionView, runPrediction } from "../predictions/run";
import { attemptDelivery, failDelivery, type SubjectKind } from "../webhooks/deliveries";

/** Retry delay of the n-th failed delivery: exponential from the kind's base, at most 10 minutes. */
export function retryDelaySeconds(kind: "job" | "prediction" | "webhook", attempts: number): number {
  const base = kind === "job" ? 30 : 5;
  return Math.min(600, base * 2 ** Math.max(0, attempts - 1));
}

/**
 * Handles a batch: each message runs (concurrently; job queues deliver one at a time) and is
 * acknowledged when done or permanently failed, or retried with backoff. On a dead-letter queue
 * the job or prediction is marked failed (`error_code` `retries_exhausted`) with its last recorded
 * error, unless it already finished.
 */
export async function handleQueue(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  const config = loadConfig(env as unknown as Record<string, unknown>);
  const logger = createLogger(config.LOG_LEVEL);
  const deadLetter = batch.queue.endsWith("-dlq");
  await Promise.all(
    batch.messages.map(async (message) => {
      const parsed = queueMessageSchema.safeParse(message.body);
      if (!parsed.success) {
        logger.log("error", "queue_message_invalid", { queue: batch.queue, message_id: message.id });
        message.ack();
        return;
      }
      const body = parsed.data;
      try {
        if (body.kind === "webhook") {
          // Retries are the delivery's own (re-sent with its backoff), not the queue's.
          if (deadLetter) await failDelivery(env, body.id, "gave up after the queue's retries");
          else await attemptDelivery(env, config, body.id, (kind, id) => subjectView(env, kind, id), logger);
          message.ack();
          return;
        }
        if (deadLetter) {
          const error = `gave up after the queue's retries (${message.attempts > 1 ? "repeated failures" : "delivery failed"})`;
          // A row already final (done, failed, or deleted) is left as it is.
          const failed =
            body.kind === "job"
              ? await failJob(env, body.id, await lastError(env, "jobs", body.id, error), "retries_exhausted")
              : await failPrediction(
                  env,
                  body.id,
                  await lastError(env, "predictions", body.id, error),
                  "retries_exhausted",
                );
          logger.log(failed ? "warn" : "info", "dead_letter", { kind: body.kind, id: body.id, failed });
          message.ack();
          return;
        }
        const outcome =
          body.kind === "job"
            ? await runJob(env, config, body.id, message.attempts, logger)
            : await runPrediction(env, config, ctx, body.id, message.attempts, logger);
        if (outcome === "ack") message.ack();
        else message.retry({ delaySeconds: retryDelaySeconds(body.kind, message.attempts) });
      } catch (error) {
        logger.log("error", "queue_message_failed", {
          kind: body.kind,
          id: body.id,
          error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        });
        message.retry({ delaySeconds: retryDelaySeconds(body.kind, message.attempts) });
      }
    }),
  );
}

/** The body `GET` answers for a webhook's subject (what the webhook POSTs), or null when it is gone. */
async function subjectView(env: Env, kind: SubjectKind, id: string): Promise<unknown | null> {
  if (kind === "prediction") {
    const row = await env.DB.prepare("SELECT * FROM predictions WHERE id = ?")
      .bind(id)
      .first<PredictionRow>();
    return row ? predictionView(row) : null;
  }
  const row = await env.DB.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first<JobRow>();
  return row ? jobView(row) : null;
}

/** The final error of a dead-lettered job/prediction: its last recorded attempt error, if any. */
async function lastError(
  env: Env,
  table: "jobs" | "predictions",
  id: string,
  fallback: string,
): Promise<string> {
  const row = await env.DB.prepare(`SELECT error FROM ${table} WHERE id = ?`)
    .bind(id)
    .first<{ error: string | null }>();
  const last = row?.error?.replace(/ \(will retry\)/, "");
  return last
    ? `${fallback}; last error: ${last}`
    : `${fallback}; the consumer never finished (crash or CPU/time limit)`;
}
