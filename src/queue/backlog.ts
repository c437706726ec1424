/** The async backlog: training jobs and async predictions not finished yet, counted from D1. */
import { d1 } from "../contracts/d1";

/** Queued and running counts of one kind of async work, and the age of its oldest queued item. */
export interface BacklogCounts {
  queued: number;
  running: number;
  /** Age of the oldest queued item in seconds, or null when none is queued. */
  oldest_queued_s: number | null;
}

/** One failed job or async prediction (the most recent are listed). */
export interface FailedWork {
  kind: "job" | "prediction";
  id: string;
  model: string;
  /** `invalid`, `retries_exhausted` (dead-lettered after the queue's retries) or `stuck`. */
  error_code: string | null;
  error: string | null;
  finished_at: string | null;
}

/** The backlog of both queues at `now` (epoch ms), and the work that failed in the last 24 h. */
export interface Backlog {
  as_of: string;
  jobs: BacklogCounts;
  predictions: BacklogCounts;
  /** Failures of the last 24 h per kind and `error_code` (`retries_exhausted` = dead-lettered). */
  failed_24h: { jobs: Record<string, number>; predictions: Record<string, number> };
  /** The 10 most recent failures of the last 24 h, newest first. */
  recent_failures: FailedWork[];
}

const DAY_MS = 86_400_000;

interface CountRow {
  queued: number | null;
  running: number | null;
  oldest: number | null;
}

/** Both tables are indexed by `created_at`; only unfinished rows are counted (one batch, one round trip). */
function countSql(table: "jobs" | "predictions"): string {
  return `SELECT SUM(status = 'queued') AS queued, SUM(status = 'running') AS running,
                 MIN(CASE WHEN status = 'queued' THEN created_at END) AS oldest
          FROM ${table} WHERE status IN ('queued', 'running')`;
}

function counts(row: CountRow | undefined, now: number): BacklogCounts {
  return {
    queued: row?.queued ?? 0,
    running: row?.running ?? 0,
    oldest_queued_s: row?.oldest == null ? null : Math.max(0, Math.round((now - row.oldest) / 1000)),
  };
}

/** Failures of the last day per `error_code` (rows created since, indexed by `created_at`). */
function failedSql(table: "jobs" | "predictions"): string {
  return `SELECT COALESCE(error_code, 'unknown') AS code, COUNT(*) AS n FROM ${table}
          WHERE created_at >= ?1 AND status = 'failed' GROUP BY code`;
}

function recentSql(table: "jobs" | "predictions", kind: string): string {
  return `SELECT '${kind}' AS kind, id, model_id AS model, error_code, error, finished_at FROM ${table}
          WHERE created_at >= ?1 AND status = 'failed' ORDER BY finished_at DESC LIMIT 10`;
}

interface FailedRow {
  kind: "job" | "prediction";
  id: string;
  model: string;
  error_code: string | null;
  error: string | null;
  finished_at: number | null;
}

/**
 * Counts unfinished jobs and async predictions, and those that failed in the last 24 h (503
 * `registry_unavailable` when D1 fails).
 */
export async function readBacklog(db: D1Database, now: number): Promise<Backlog> {
  const since = now - DAY_MS;
  const [jobs, predictions, failedJobs, failedPredictions, recentJobs, recentPredictions] = await d1(
    "count backlog",
    () =>
      db.batch<unknown>([
        db.prepare(countSql("jobs")),
        db.prepare(countSql("predictions")),
        db.prepare(failedSql("jobs")).bind(since),
        db.prepare(failedSql("predictions")).bind(since),
        db.prepare(recentSql("jobs", "job")).bind(since),
        db.prepare(recentSql("predictions", "prediction")).bind(since),
      ]),
  );
  const byCode = (rows: unknown[] | undefined) =>
    Object.fromEntries(((rows ?? []) as { code: string; n: number }[]).map((r) => [r.code, r.n]));
  const recent = [
    ...((recentJobs?.results ?? []) as FailedRow[]),
    ...((recentPredictions?.results ?? []) as FailedRow[]),
  ]
    .sort((a, b) => (b.finished_at ?? 0) - (a.finished_at ?? 0))
    .slice(0, 10)
    .map((r) => ({
      ...r,
      error: r.error === null ? null : r.error.slice(0, 200),
      finished_at: r.finished_at === null ? null : new Date(r.finished_at).toISOString(),
    }));
  return {
    as_of: new Date(now).toISOString(),
    jobs: counts(jobs?.results[0] as CountRow | undefined, now),
    predictions: counts(predictions?.results[0] as CountRow | undefined, now),
    failed_24h: { jobs: byCode(failedJobs?.results), predictions: byCode(failedPredictions?.results) },
    recent_failures: recent,
  };
}
