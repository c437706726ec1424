/** The registry's model list, shared by every protocol that lists models. */
import type { Config } from "../config";
import { d1, getVersionRows, type VersionRow, versionView } from "./db";
import { ensureModelImported, importAllModels } from "./import";

/**
 * Every model with its active version's kind, task, labels, metrics and size (the shape of
 * `GET /api/v1/models`), importing models that exist only in R2 first.
 */
export async function listModelSummaries(env: Env, config: Config) {
  await importAllModels(env);
  const { results } = await d1("list models", () =>
    env.DB.prepare(
      `SELECT m.id, m.active_version, m.created_at, m.updated_at,
              (SELECT COUNT(*) FROM model_versions c WHERE c.model_id = m.id AND c.state = 'ready') AS versions,
              v.model_id, v.version, v.state, v.source, v.task, v.labels, v.metrics, v.sha256, v.size_bytes,
              v.manifest, v.created_at AS version_created_at
       FROM models m LEFT JOIN model_versions v ON v.model_id = m.id AND v.version = m.active_version
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
  const models = results.map((r) => {
    const active =
      r.version === null || r.version_created_at === null
        ? null
        : versionView({ ...r, created_at: r.version_created_at });
    return {
      id: r.id,
      default: r.id === config.DEFAULT_MODEL,
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
          }
        : {}),
      created_at: new Date(r.created_at).toISOString(),
      updated_at: new Date(r.updated_at).toISOString(),
    };
  });
  return models;
}

/** The ready versions of model `id`, oldest first (importing it from R2 first when needed). */
export async function modelVersions(env: Env, id: string): Promise<string[]> {
  await ensureModelImported(env, id);
  const rows = await getVersionRows(env.DB, id);
  return rows.filter((r) => r.state === "ready").map((r) => r.version);
}
