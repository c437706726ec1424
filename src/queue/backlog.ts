/** The async backlog: training jobs and async predictions not finished yet, counted from D1. */
import { d1 } from "../contracts/d1";

/** Queued and running counts of one kind of async work, and the age of its oldest queued item. */
export interface BacklogCounts {
  queued: number;
  running: number;
  /** Age of the oldest queued item in seconds, or null when none is queued. */
  oldest_queued_s: number | null;
}

/** The backlog of both queues at `now` (epoch ms). */
export interface Backlog {
  as_of: string;
  jobs: BacklogCounts;
  predictions: BacklogCounts;
}

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

/** Counts unfinished jobs and async predictions (503 `registry_unavailable` when D1 fails). */
export async function readBacklog(db: D1Database, now: number): Promise<Backlog> {
  const [jobs, predictions] = await d1("count backlog", () =>
    db.batch<CountRow>([db.prepare(countSql("jobs")), db.prepare(countSql("predictions"))]),
  );
  return {
    as_of: new Date(now).toISOString(),
    jobs: counts(jobs?.results[0], now),
    predictions: counts(predictions?.results[0], now),
  };
}
