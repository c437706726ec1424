/**
 * The stuck-work sweep for training jobs: as for async predictions (src/predictions/sweep.ts), a
 * `queued` or `running` job whose state has not moved for `STUCK_JOB_SECONDS` is re-enqueued (back
 * to `queued`, stage `retrying`) at most `STUCK_MAX_REQUEUES` times, then failed with `error_code`
 * `stuck` and its inline rows dropped.
 */
import type { Config } from "../config";
import type { QueueMessageBody } from "../contracts/queue";
import { jobRowsKey } from "../contracts/r2-keys";
import { STUCK_ERROR_SQL, SWEEP_CHUNK, type SweepReport } from "../predictions/sweep";

const MAX_ROUNDS = 10;

/** Re-enqueues or fails the training jobs stuck at `now`. */
export async function sweepStuckJobs(env: Env, config: Config, now = Date.now()): Promise<SweepReport> {
  const deadline = now - config.STUCK_JOB_SECONDS * 1000;
  const report: SweepReport = { requeued: 0, failed: 0 };
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const { results } = await env.DB.prepare(
      `UPDATE jobs SET status = 'failed', stage = 'failed', error_code = 'stuck', finished_at = ?2, updated_at = ?2,
         error = ${STUCK_ERROR_SQL}
       WHERE id IN (SELECT id FROM jobs WHERE status IN ('queued', 'running') AND updated_at < ?3
                    AND sweeps >= ?4 LIMIT ?5)
       RETURNING id`,
    )
      .bind(String(config.STUCK_JOB_SECONDS), now, deadline, config.STUCK_MAX_REQUEUES, SWEEP_CHUNK)
      .all<{ id: string }>();
    if (results.length > 0) await env.MODELS.delete(results.map((r) => jobRowsKey(r.id)));
    report.failed += results.length;
    if (results.length < SWEEP_CHUNK) break;
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const { results } = await env.DB.prepare(
      `UPDATE jobs SET status = 'queued', stage = 'retrying', sweeps = sweeps + 1, updated_at = ?1
       WHERE id IN (SELECT id FROM jobs WHERE status IN ('queued', 'running') AND updated_at < ?2
                    AND sweeps < ?3 ORDER BY updated_at LIMIT ?4)
       RETURNING id`,
    )
      .bind(now, deadline, config.STUCK_MAX_REQUEUES, SWEEP_CHUNK)
      .all<{ id: string }>();
    if (results.length === 0) break;
    await env.JOBS_QUEUE.sendBatch(
      results.map((r) => ({ body: { kind: "job", id: r.id } satisfies QueueMessageBody })),
    );
    report.requeued += results.length;
    if (results.length < SWEEP_CHUNK) break;
  }
  return report;
}
