/**
 * The stuck-work sweep for async predictions (run by the cron trigger, beside the retention purge).
 * A `queued` or `running` prediction whose state has not moved for `STUCK_PREDICTION_SECONDS` has
 * lost its message (the runtime died between a retry being recorded and being scheduled, or the
 * dead-letter delivery was lost): the sweep sends it again, at most `STUCK_MAX_REQUEUES` times,
 * then fails it with `error_code` `stuck` and its last error.
 */
import type { Config } from "../config";
import type { QueueMessageBody } from "../contracts/queue";

/** Rows per statement (a queue `sendBatch` takes at most 100 messages); at most `MAX_ROUNDS` per run. */
export const SWEEP_CHUNK = 90;
const MAX_ROUNDS = 10;

/** What one sweep did. */
export interface SweepReport {
  requeued: number;
  failed: number;
}

/**
 * SQL for the `error` of a row the sweep gives up on: the reason, then the last attempt's error
 * (without its "(will retry)"), if any. Binds: ?1 = the deadline in seconds, as text (D1 binds JS numbers as REAL: "900.0").
 */
export const STUCK_ERROR_SQL = `'stuck: no progress for ' || ?1 || ' s after ' || sweeps || ' re-enqueue(s) by the sweep'
  || ifnull('; last error: ' || replace(error, ' (will retry)', ''), '')`;

/** Re-enqueues or fails the async predictions stuck at `now` (see the module comment). */
export async function sweepStuckPredictions(
  env: Env,
  config: Config,
  now = Date.now(),
): Promise<SweepReport> {
  const deadline = now - config.STUCK_PREDICTION_SECONDS * 1000;
  const report: SweepReport = { requeued: 0, failed: 0 };
  for (let round = 0; round < MAX_ROUNDS; round++) {
    // One statement each: the row is chosen and changed atomically, so a consumer that claims it
    // meanwhile (moving `updated_at`) is not touched, and two sweeps never both send it.
    const failed = await env.DB.prepare(
      `UPDATE predictions SET status = 'failed', error_code = 'stuck', finished_at = ?2, updated_at = ?2,
         error = ${STUCK_ERROR_SQL}
       WHERE id IN (SELECT id FROM predictions WHERE status IN ('queued', 'running') AND updated_at < ?3
                    AND sweeps >= ?4 LIMIT ?5)`,
    )
      .bind(String(config.STUCK_PREDICTION_SECONDS), now, deadline, config.STUCK_MAX_REQUEUES, SWEEP_CHUNK)
      .run();
    report.failed += failed.meta.changes;
    if (failed.meta.changes < SWEEP_CHUNK) break;
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const { results } = await env.DB.prepare(
      `UPDATE predictions SET status = 'queued', sweeps = sweeps + 1, updated_at = ?1
       WHERE id IN (SELECT id FROM predictions WHERE status IN ('queued', 'running') AND updated_at < ?2
                    AND sweeps < ?3 ORDER BY updated_at LIMIT ?4)
       RETURNING id, input_key`,
    )
      .bind(now, deadline, config.STUCK_MAX_REQUEUES, SWEEP_CHUNK)
      .all<{ id: string; input_key: string }>();
    if (results.length === 0) break;
    // If this send fails the rows are counted as swept anyway and come back after the deadline.
    await env.PREDICTIONS_QUEUE.sendBatch(
      results.map((r) => ({
        body: { kind: "prediction", id: r.id, key: r.input_key } satisfies QueueMessageBody,
      })),
    );
    report.requeued += results.length;
    if (results.length < SWEEP_CHUNK) break;
  }
  return report;
}
