/** Deleting a model and everything related to it (the seed's "remove a model and all related objects"). */

import type { Config } from "../config";
import { d1 } from "../contracts/d1";
import { MODEL_ID_RE } from "../contracts/manifest";
import { jobRowsKey, r2Keys } from "../contracts/r2-keys";
import { clearLiveProfiles } from "../drift/live";
import { ApiError } from "../errors";
import { clearShadowSums } from "../rollout/shadow-stats";
import { invalidateModel } from "../storage/model-store";
import { getVersionRows } from "./db";
import { ensureModelImported, listKeys } from "./import";

/** What a deletion removed. */
export interface DeletionReport {
  id: string;
  versions: number;
  jobs: number;
  predictions: number;
  log_rows: number;
  r2_objects: number;
}

/** R2's batch delete takes at most 1000 keys. */
const R2_DELETE_MAX = 1000;

/**
 * Deletes model `id`: first its R2 active pointer (serving stops: 404 within
 * `ACTIVE_POINTER_TTL_MS` everywhere, at once here), then in one D1 transaction its versions, jobs,
 * async predictions and prediction log rows, then the R2 objects: every version's bytes and
 * manifest (everything under `models/<id>/`), the predictions' inputs and the jobs' inline rows.
 * Datasets under `datasets/` are the caller's and stay. A default model (`DEFAULT_MODEL`,
 * `DEFAULT_IMAGE_MODEL`) is refused (409
 * `model_is_default`), and so is an online model (409 `model_is_online`: its learner would publish
 * the next snapshot again). Re-running a deletion that failed half-way finishes it.
 */
export async function deleteModel(env: Env, config: Config, id: string): Promise<DeletionReport> {
  if (id === config.DEFAULT_MODEL || id === config.DEFAULT_IMAGE_MODEL) {
    const setting = id === config.DEFAULT_MODEL ? "DEFAULT_MODEL" : "DEFAULT_IMAGE_MODEL";
    throw new ApiError("model_is_default", `'${id}' is the default model (${setting}) and cannot be deleted`);
  }
  if (config.ONLINE_MODELS.includes(id)) {
    throw new ApiError(
      "model_is_online",
      `'${id}' is an online model (ONLINE_MODELS); remove it from ONLINE_MODELS before deleting it`,
    );
  }
  if (!MODEL_ID_RE.test(id)) throw new ApiError("model_not_found", `no model named '${id}'`);
  await ensureModelImported(env, id);
  const db = env.DB;
  const versions = await getVersionRows(db, id);
  const modelKeys = await listKeys(env.MODELS, `models/${id}/`);
  const model = await db.prepare("SELECT id FROM models WHERE id = ?").bind(id).first();
  if (!model && modelKeys.length === 0) throw new ApiError("model_not_found", `no model named '${id}'`);

  await env.MODELS.delete(r2Keys.active(id));
  invalidateModel(
    id,
    versions.map((v) => v.version),
  );
  const [inputs, jobs] = await d1("read related rows", () =>
    Promise.all([
      db
        .prepare("SELECT input_key FROM predictions WHERE model_id = ?")
        .bind(id)
        .all<{ input_key: string }>(),
      db.prepare("SELECT id FROM jobs WHERE model_id = ?").bind(id).all<{ id: string }>(),
    ]),
  );
  const results = await d1("delete model", () =>
    db.batch([
      db.prepare("DELETE FROM prediction_log WHERE model_id = ?").bind(id),
      db.prepare("DELETE FROM predictions WHERE model_id = ?").bind(id),
      db.prepare("DELETE FROM jobs WHERE model_id = ?").bind(id),
      db.prepare("DELETE FROM model_versions WHERE model_id = ?").bind(id),
      db.prepare("DELETE FROM models WHERE id = ?").bind(id),
      // Feedback on the model's predictions (docs/rollout.md); last, so the counts above keep their places.
      db.prepare("DELETE FROM feedback WHERE model_id = ?").bind(id),
    ]),
  );
  const changes = results.map((r) => r.meta.changes);
  const keys = [
    ...modelKeys.filter((k) => k !== r2Keys.active(id)),
    ...inputs.results.map((r) => r.input_key),
    ...jobs.results.map((r) => jobRowsKey(r.id)),
  ];
  for (let i = 0; i < keys.length; i += R2_DELETE_MAX)
    await env.MODELS.delete(keys.slice(i, i + R2_DELETE_MAX));
  // Its shadow comparisons and live input profiles (a model reusing the id starts without them).
  await Promise.all([
    clearShadowSums(env, id, config.STATS_SHARDS),
    clearLiveProfiles(env, id, config.STATS_SHARDS),
  ]);
  return {
    id,
    versions: changes[3] ?? 0,
    jobs: changes[2] ?? 0,
    predictions: changes[1] ?? 0,
    log_rows: changes[0] ?? 0,
    r2_objects: modelKeys.length + inputs.results.length,
  };
}
