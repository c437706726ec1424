/** D1 row shapes shared across folders: async predictions and training jobs (migrations/). */

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

/** A `predictions` row. */
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

/** Job statuses. */
export type JobStatus = "queued" | "running" | "succeeded" | "failed";

/** A `jobs` row. */
export interface JobRow extends QueuedWorkColumns {
  id: string;
  model_id: string;
  version: string;
  status: JobStatus;
  stage: string;
  progress: number;
  spec: string;
  metrics: string | null;
  error: string | null;
}
