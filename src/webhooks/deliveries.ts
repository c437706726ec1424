/**
 * Signed webhook deliveries (docs/webhooks.md). An async prediction or training job submitted with
 * a `callback_url` gets one delivery row (`waiting`). When its subject finishes (done, succeeded
 * or failed) the delivery becomes `pending` and a `{kind: "webhook"}` message is queued; the queue
 * consumer POSTs the body `GET` returns for the subject, signed per Standard Webhooks
 * (`webhook-id` = the delivery id, stable across attempts; `webhook-timestamp`;
 * `webhook-signature`: HMAC-SHA256 with the issuer's secret, by the `standardwebhooks` library).
 * A 2xx answer delivers it; anything else (or no answer within 10 s) is retried through the queue
 * with exponential backoff (`WEBHOOK_RETRY_BASE_SECONDS` × 2^(n-1), at most 1 h) until
 * `WEBHOOK_MAX_ATTEMPTS`, then it is `failed`. At least once: the scheduled sweep re-queues
 * deliveries whose subject finished without a message (a crash between the two writes) or whose
 * message was lost.
 */
import { Webhook } from "standardwebhooks";
import type { Config } from "../config";
import { ApiError } from "../errors";
import type { Logger } from "../log";
import { checkCallbackUrl } from "./destination";

export type SubjectKind = "prediction" | "job";
export type DeliveryStatus = "waiting" | "pending" | "delivered" | "failed";

/** A `webhook_deliveries` row. */
export interface DeliveryRow {
  id: string;
  subject_kind: SubjectKind;
  subject_id: string;
  issuer: string | null;
  url: string;
  status: DeliveryStatus;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  next_attempt_at: number | null;
  delivered_at: number | null;
}

/** How long one delivery attempt may take. */
export const DELIVERY_TIMEOUT_MS = 10_000;
/** A pending delivery whose message has not run for this long is queued again by the sweep. */
export const LOST_MESSAGE_MS = 15 * 60_000;
/** Longest retry delay. */
const MAX_DELAY_S = 3600;

/** The Standard Webhooks message id of a subject's delivery (the same on every attempt). */
export const deliveryId = (subjectId: string): string => `msg_${subjectId}`;

/** Delay before attempt `attempts + 1`, after `attempts` failed ones. */
export function retryDelaySeconds(
  config: Pick<Config, "WEBHOOK_RETRY_BASE_SECONDS">,
  attempts: number,
): number {
  return Math.min(MAX_DELAY_S, config.WEBHOOK_RETRY_BASE_SECONDS * 2 ** Math.max(0, attempts - 1));
}

/** The D1 statement that records a subject's delivery (`waiting`), to run with the subject's insert. */
export function insertDelivery(
  db: D1Database,
  kind: SubjectKind,
  subjectId: string,
  issuer: string | undefined,
  url: URL,
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO webhook_deliveries (id, subject_kind, subject_id, issuer, url, status, created_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, ?5, 'waiting', ?6, ?6) ON CONFLICT DO NOTHING`,
    )
    .bind(deliveryId(subjectId), kind, subjectId, issuer ?? null, url.href, now);
}

/**
 * Called once a subject reached a final state: its delivery (if any) becomes `pending` and is
 * queued. Never throws: a failure here is logged and left to the sweep.
 */
export async function subjectFinished(env: Env, subjectId: string, logger?: Logger): Promise<void> {
  try {
    const now = Date.now();
    const row = await env.DB.prepare(
      `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?1, updated_at = ?1
       WHERE subject_id = ?2 AND status = 'waiting' RETURNING id`,
    )
      .bind(now, subjectId)
      .first<{ id: string }>();
    if (row) await env.PREDICTIONS_QUEUE.send({ kind: "webhook", id: row.id });
  } catch (error) {
    logger?.log("warn", "webhook_enqueue_failed", {
      subject_id: subjectId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** What the consumer does with a webhook message. */
export type DeliveryOutcome = "delivered" | "failed" | "retry" | "skipped";

/**
 * One delivery attempt of delivery `id`: signs and POSTs `body(kind, subjectId)` (the subject's
 * `GET` view; null when the subject is gone), records the outcome and, when it should be retried,
 * queues the next attempt after the backoff delay.
 */
export async function attemptDelivery(
  env: Env,
  config: Config,
  id: string,
  body: (kind: SubjectKind, subjectId: string) => Promise<unknown | null>,
  logger: Logger,
): Promise<DeliveryOutcome> {
  const row = await env.DB.prepare("SELECT * FROM webhook_deliveries WHERE id = ?")
    .bind(id)
    .first<DeliveryRow>();
  if (row?.status !== "pending") return "skipped";
  const attempt = row.attempts + 1;
  let status: number | null = null;
  let error: string | null = null;
  let permanent = false;
  try {
    const payload = await body(row.subject_kind, row.subject_id);
    if (payload === null) {
      permanent = true;
      throw new Error(`the ${row.subject_kind} is gone`);
    }
    let url: URL;
    try {
      url = checkCallbackUrl(row.url, row.issuer ?? undefined, config);
    } catch (refused) {
      permanent = true;
      throw refused;
    }
    const secret = config.WEBHOOK_SECRETS[row.issuer ?? "anonymous"] as string;
    const text = JSON.stringify(payload);
    const timestamp = new Date();
    const signature = new Webhook(secret).sign(row.id, timestamp, text);
    const response = await fetch(url, {
      method: "POST",
      redirect: "manual",
      headers: {
        "content-type": "application/json",
        "user-agent": "edge-inference-webhooks/1",
        "webhook-id": row.id,
        "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
        "webhook-signature": signature,
      },
      body: text,
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    status = response.status;
    await response.body?.cancel().catch(() => undefined);
    if (status < 200 || status > 299)
      error = `answered ${status}${status >= 300 && status < 400 ? " (redirects are not followed)" : ""}`;
  } catch (e) {
    error = e instanceof ApiError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  }
  const now = Date.now();
  if (error === null) {
    await env.DB.prepare(
      `UPDATE webhook_deliveries SET status = 'delivered', attempts = ?1, last_status = ?2, last_error = NULL,
         delivered_at = ?3, updated_at = ?3, next_attempt_at = NULL WHERE id = ?4`,
    )
      .bind(attempt, status, now, id)
      .run();
    logger.log("info", "webhook_delivered", { delivery_id: id, attempt, status });
    return "delivered";
  }
  const giveUp = permanent || attempt >= config.WEBHOOK_MAX_ATTEMPTS;
  const delay = retryDelaySeconds(config, attempt);
  await env.DB.prepare(
    `UPDATE webhook_deliveries SET status = ?1, attempts = ?2, last_status = ?3, last_error = ?4, updated_at = ?5,
       next_attempt_at = ?6 WHERE id = ?7`,
  )
    .bind(
      giveUp ? "failed" : "pending",
      attempt,
      status,
      error.slice(0, 500),
      now,
      giveUp ? null : now + delay * 1000,
      id,
    )
    .run();
  logger.log("warn", giveUp ? "webhook_failed" : "webhook_attempt_failed", {
    delivery_id: id,
    attempt,
    status,
    error: error.slice(0, 300),
  });
  if (giveUp) return "failed";
  await env.PREDICTIONS_QUEUE.send({ kind: "webhook", id }, { delaySeconds: delay });
  return "retry";
}

/** Marks a delivery failed (its message was dead-lettered), unless it already finished. */
export async function failDelivery(env: Env, id: string, error: string): Promise<void> {
  await env.DB.prepare(
    `UPDATE webhook_deliveries SET status = 'failed', last_error = ?1, updated_at = ?2, next_attempt_at = NULL
     WHERE id = ?3 AND status IN ('waiting', 'pending')`,
  )
    .bind(error.slice(0, 500), Date.now(), id)
    .run();
}

/**
 * The sweep (cron): queues deliveries whose subject finished but which are still `waiting` (the
 * finishing write and the enqueue are not one transaction; the stuck-work sweep fails subjects
 * without calling `subjectFinished`), and `pending` ones whose message is overdue.
 */
export async function sweepDeliveries(env: Env, now = Date.now()): Promise<{ requeued: number }> {
  const { results } = await env.DB.prepare(
    `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?1, updated_at = ?1
     WHERE id IN (
       SELECT d.id FROM webhook_deliveries d
       WHERE (d.status = 'waiting' AND (
               EXISTS (SELECT 1 FROM predictions p WHERE p.id = d.subject_id AND p.status IN ('done', 'failed'))
            OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = d.subject_id AND j.status IN ('succeeded', 'failed'))))
          OR (d.status = 'pending' AND d.next_attempt_at < ?2)
       LIMIT 500)
     RETURNING id`,
  )
    .bind(now, now - LOST_MESSAGE_MS)
    .all<{ id: string }>();
  if (results.length > 0) {
    await env.PREDICTIONS_QUEUE.sendBatch(results.map((r) => ({ body: { kind: "webhook", id: r.id } })));
  }
  return { requeued: results.length };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A delivery as `GET /api/v1/webhooks/deliveries[/:id]` shows it. */
export function deliveryView(row: DeliveryRow) {
  return {
    id: row.id,
    subject: { kind: row.subject_kind, id: row.subject_id },
    url: row.url,
    status: row.status,
    attempts: row.attempts,
    last_status: row.last_status,
    last_error: row.last_error,
    created_at: iso(row.created_at) as string,
    next_attempt_at: iso(row.next_attempt_at),
    delivered_at: iso(row.delivered_at),
  };
}

/** Deliveries visible to `owner` (every caller's when undefined), newest first, of one subject when given. */
export async function listDeliveries(
  db: D1Database,
  owner: string | undefined,
  subject: string | undefined,
  limit: number,
): Promise<DeliveryRow[]> {
  const { results } = await db
    .prepare(
      `SELECT * FROM webhook_deliveries WHERE (?1 IS NULL OR issuer = ?1) AND (?2 IS NULL OR subject_id = ?2)
       ORDER BY created_at DESC LIMIT ?3`,
    )
    .bind(owner ?? null, subject ?? null, limit)
    .all<DeliveryRow>();
  return results;
}
