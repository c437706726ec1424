import { z } from "zod";
import { canSee } from "../auth/scope";
import type { Handler } from "../context";
import { ApiError } from "../errors";
import { json } from "../http";
import { type JobRow, jobView } from "../jobs/store";
import { d1 } from "../registry/db";

/**
 * `GET /api/v1/jobs/:id`: a training job's status, stage, progress, metrics and error. Only the
 * issuer that created the job, and admins, see it (any other gets 404, as for an unknown id).
 */
export const getJob: Handler = async (request, env) => {
  const id = request.params.id ?? "";
  const row = z.uuid().safeParse(id).success
    ? await d1("read job", () => env.DB.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first<JobRow>())
    : null;
  if (!row || !canSee(request.state, row.caller)) {
    throw new ApiError("job_not_found", `no job '${id.slice(0, 80)}'`);
  }
  return json(jobView(row));
};
