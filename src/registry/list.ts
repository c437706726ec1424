/** The registry's model list, as `GET /api/v1/models` and the dashboard show it. */

import { d1 } from "../contracts/d1";
import type { JobRow } from "../contracts/rows";
import { ApiError } from "../errors";
import {
  getModelRow,
  getVersionRows,
  rolloutOfRow,
  type VersionRow,
  type VersionView,
  versionView,
} from "./db";
import { ensureModelImported, importAllModels } from "./import";

/** One model with its active version's task, labels, metrics and size. */
export interface ModelSummary {
  id: string;
  default: boolean;
  active_version: string | null;
  /** Ready versions. */
  versions: number;
  kind?: VersionView["kind"];
  task?: string;
  labels?: string[];
  metrics?: Record<string, number>;
  size_bytes?: number;
  sha256?: string;
  graph_optimization_level?: VersionView["graph_optimization_level"];
  created_at: string;
  updated_at: string;
}

/** Every model (shipped ones imported first), ordered by id; `defaultModel` is flagged `default`. */
export async function listModelSummaries(env: Env, defaultModel: string): Promise<ModelSummary[]> {
  await importAllModels(env);
  const { results } = await d1("list models", () =>
    env.DB.prepare(
      `SELECT m.id, m.active_version, m.created_at, m.updated_at,
              (SELECT COUNT(*) FROM model_versions c WHERE c.model_id = m.id AND c.state = 'ready') AS versions,
              v.model_id, v.version, v.state, v.source, v.task, v.labels, v.metrics, v.sha256, v.size_bytes,
              v.manifest, v.created_at AS version_created_at
       FROM models m LEFT JOIN model_versions v ON v.model_id = m.id AND v.version = m.active_version
       -- A model row with no ready version and none active is only a publish's reservation (in
       -- flight, or left by a process that died mid-upload): not a model yet.
       WHERE m.active_version IS NOT NULL
          OR EXISTS (SELECT 1 FROM model_versions r WHERE r.model_id = m.id AND r.state = 'ready')
       ORDER BY m.id`,
    ).all<
      Omit<VersionRow, "created_at"> & {
        id: string;
        active_version: string | null;
        created_at: number;
        updated_at: number;
        versions: number;
        version_created_at: number | null;
      }
    >(),
  );
  return results.map((r) => {
    const active =
      r.version === null || r.version_created_at === null
        ? null
        : versionView({ ...r, created_at: r.version_created_at });
    return {
      id: r.id,
      default: r.id === defaultModel,
      active_version: r.active_version,
      versions: r.versions,
      ...(active
        ? {
            kind: active.kind,
            task: active.task,
            labels: active.labels,
            metrics: active.metrics,
            size_bytes: active.size_bytes,
            sha256: active.sha256,
            graph_optimization_level: active.graph_optimization_level,
          }
        : {}),
      created_at: new Date(r.created_at).toISOString(),
      updated_at: new Date(r.updated_at).toISOString(),
    };
  });
}

/** The ready versions of model `id`, oldest first (importing it from R2 first when needed). */
export async function modelVersions(env: Env, id: string): Promise<string[]> {
  await ensureModelImported(env, id);
  const rows = await getVersionRows(env.DB, id);
  return rows.filter((r) => r.state === "ready").map((r) => r.version);
}

/**
 * Model `id` with every version and its latest 20 jobs (only `owner`'s when given: jobs are their
 * creator's and admins' to see), as `GET /api/v1/models/:id` shows it; 404 `model_not_found`.
 */
export async function modelDetail(env: Env, defaultModel: string, id: string, owner: string | undefined) {
  await ensureModelImported(env, id);
  const model = await getModelRow(env.DB, id);
  if (!model) throw new ApiError("model_not_found", `no model named '${id}'`);
  const versions = await getVersionRows(env.DB, id);
  const { results: jobs } = await d1("read jobs", () =>
    env.DB.prepare(
      `SELECT id, version, status, created_at FROM jobs WHERE model_id = ?1 AND (?2 IS NULL OR caller = ?2)
       ORDER BY created_at DESC LIMIT 20`,
    )
      .bind(id, owner ?? null)
      .all<Pick<JobRow, "id" | "version" | "status" | "created_at">>(),
  );
  return {
    id,
    default: id === defaultModel,
    active_version: model.active_version,
    ...rolloutOfRow(model),
    created_at: new Date(model.created_at).toISOString(),
    updated_at: new Date(model.updated_at).toISOString(),
    versions: versions.map(versionView),
    jobs: jobs.map((j) => ({
      ...j,
      created_at: new Date(j.created_at).toISOString(),
      status_url: `/api/v1/jobs/${j.id}`,
    })),
  };
}
