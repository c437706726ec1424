/**
 * Retention: the scheduled (cron) purge of async predictions (D1 rows and R2 inputs), prediction
 * log rows, feedback on them and finished jobs older than `RETENTION_DAYS`, and of expired dashboard logins.
 */
import type { Config } from "./config";
import { jobRowsKey } from "./contracts/r2-keys";
import { purgeDashboardLogins } from "./dashboard/session";

/** Rows removed per statement (D1 binds at most 100 parameters); at most `MAX_ROUNDS` chunks per table per run. */
const CHUNK = 90;
const MAX_ROUNDS = 100;

/** What one purge removed. */
export interface PurgeReport {
  predictions: number;
  webhook_deliveries: number;
  log_rows: number;
  /** Feedback rows whose prediction is older than RETENTION_DAYS (with any text they keep). */
  feedback_rows: number;
  jobs: number;
  r2_objects: number;
  /** Expired dashboard login codes and sessions. */
  dashboard_logins: number;
}

/**
 * Deletes everything older than `RETENTION_DAYS` before `now`: async predictions (any status; rows
 * and `inputs/<id>` objects), prediction log rows, and finished jobs (with any leftover inline
 * rows). Works in bounded chunks so one run stays within a cron invocation's limits; a backlog is
 * finished by the next runs.
 */
export async function purgeExpired(env: Env, config: Config, now = Date.now()): Promise<PurgeReport> {
  const cutoff = now - config.RETENTION_DAYS * 86_400_000;
  const report: PurgeReport = {
    predictions: 0,
    webhook_deliveries: 0,
    log_rows: 0,
    feedback_rows: 0,
    jobs: 0,
    r2_objects: 0,
    dashboard_logins: 0,
  };
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const { results } = await env.DB.prepare(
      "SELECT id, input_key FROM predictions WHERE created_at < ? LIMIT ?",
    )
      .bind(cutoff, CHUNK)
      .all<{ id: string; input_key: string }>();
    if (results.length === 0) break;
    await env.MODELS.delete(results.map((r) => r.input_key));
    report.r2_objects += results.length;
    const ids = results.map((r) => r.id);
    const done = await env.DB.prepare(`DELETE FROM predictions WHERE id IN (${ids.map(() => "?").join(",")})`)
      .bind(...ids)
      .run();
    report.predictions += done.meta.changes;
    if (results.length < CHUNK) break;
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const done = await env.DB.prepare(
      "DELETE FROM prediction_log WHERE seq IN (SELECT seq FROM prediction_log WHERE at < ? LIMIT ?)",
    )
      .bind(cutoff, CHUNK * 10)
      .run();
    report.log_rows += done.meta.changes;
    if (done.meta.changes < CHUNK * 10) break;
  }
  // Feedback lives as long as the prediction it labels: its text never outlives the log's.
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const done = await env.DB.prepare(
      "DELETE FROM feedback WHERE log_seq IN (SELECT log_seq FROM feedback WHERE predicted_at < ? LIMIT ?)",
    )
      .bind(cutoff, CHUNK * 10)
      .run();
    report.feedback_rows += done.meta.changes;
    if (done.meta.changes < CHUNK * 10) break;
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const { results } = await env.DB.prepare(
      "SELECT id FROM jobs WHERE status IN ('succeeded', 'failed') AND created_at < ? LIMIT ?",
    )
      .bind(cutoff, CHUNK)
      .all<{ id: string }>();
    if (results.length === 0) break;
    const ids = results.map((r) => r.id);
    await env.MODELS.delete(ids.map(jobRowsKey));
    const done = await env.DB.prepare(`DELETE FROM jobs WHERE id IN (${ids.map(() => "?").join(",")})`)
      .bind(...ids)
      .run();
    report.jobs += done.meta.changes;
    if (results.length < CHUNK) break;
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const done = await env.DB.prepare(
      `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
         WHERE status IN ('delivered', 'failed') AND created_at < ? LIMIT ?)`,
    )
      .bind(cutoff, CHUNK * 10)
      .run();
    report.webhook_deliveries += done.meta.changes;
    if (done.meta.changes < CHUNK * 10) break;
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const removed = await purgeDashboardLogins(env.DB, now, CHUNK * 10);
    report.dashboard_logins += removed;
    if (removed < CHUNK * 10) break;
  }
  return report;
}
