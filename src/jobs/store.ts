/** D1 rows of training jobs and their API view. */
import * as z from "zod";
import type { JobSchema } from "../answers";
import { canSee } from "../auth/scope";
import type { RequestState } from "../context";
import { d1 } from "../contracts/d1";
import type { JobRow } from "../contracts/rows";
import { ApiError } from "../errors";
import type { StoredJobSpec } from "./spec";

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A job as `GET /api/v1/jobs/:id` shows it. */
export function jobView(row: JobRow): z.input<typeof JobSchema> {
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
    feedback: spec.feedback ?? false,
    metrics: row.metrics === null ? null : (JSON.parse(row.metrics) as Record<string, number>),
    error: row.error,
    error_code: row.error_code,
    attempts: row.attempts,
    created_at: iso(row.created_at),
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
  };
}

/**
 * Job `id` if this request may see it (its creator's, or any for an admin); otherwise, as for an
 * unknown id, 404 `job_not_found`.
 */
export async function readJob(
  env: Env,
  state: Pick<RequestState, "caller" | "config">,
  id: string,
): Promise<JobRow> {
  const row = z.uuid().safeParse(id).success
    ? await d1("read job", () => env.DB.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first<JobRow>())
    : null;
  if (!row || !canSee(state, row.caller)) {
    throw new ApiError("job_not_found", `no job '${id.slice(0, 80)}'`);
  }
  return row;
}
