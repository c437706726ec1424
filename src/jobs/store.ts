/** D1 rows of training jobs and their API view. */
import type { FailureCode } from "../predictions/run";
import type { StoredJobSpec } from "./spec";

/** Job statuses. */
export type JobStatus = "queued" | "running" | "succeeded" | "failed";

/** A `jobs` row. */
export interface JobRow {
  id: string;
  model_id: string;
  version: string;
  status: JobStatus;
  stage: string;
  progress: number;
  spec: string;
  metrics: string | null;
  error: string | null;
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

/** R2 key of a job's inline rows. */
export const jobRowsKey = (jobId: string): string => `jobs/${jobId}/rows.json`;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A job as `GET /api/v1/jobs/:id` shows it. */
export function jobView(row: JobRow): Record<string, unknown> {
  const spec = JSON.parse(row.spec) as StoredJobSpec;
  return {
    id: row.id,
    status: row.status,
    stage: row.stage,
    progress: row.progress,
    model: { id: row.model_id, version: row.version },
    activate: spec.activate,
    task: spec.task,
    dataset: spec.dataset,
    metrics: row.metrics === null ? null : (JSON.parse(row.metrics) as Record<string, number>),
    error: row.error,
    error_code: row.error_code,
    attempts: row.attempts,
    created_at: iso(row.created_at),
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
  };
}
