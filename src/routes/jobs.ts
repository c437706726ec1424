import { JobSchema } from "../answers";
import type { Handler } from "../context";
import { reply } from "../http";
import { jobView, readJob } from "../jobs/store";

/**
 * `GET /api/v1/jobs/:id`: a training job's status, stage, progress, metrics and error. Only the
 * issuer that created the job, and admins, see it (any other gets 404, as for an unknown id).
 */
export const getJob: Handler = async (request, env) =>
  reply(JobSchema, jobView(await readJob(env, request.state, request.params.id ?? "")));
