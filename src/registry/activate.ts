/**
 * Switching a model's active version (activation, rollback). The serving path reads the R2
 * pointer `models/<id>/active.json`, cached per isolate for `ACTIVE_POINTER_TTL_MS`; D1's
 * `models.active_version` mirrors it for the registry API.
 */
import type { Config } from "../config";
import { d1 } from "../contracts/d1";
import { r2Keys } from "../contracts/r2-keys";
import { ApiError } from "../errors";
import { withModel } from "../inference/engine";
import { invalidateModel } from "../storage/model-store";
import { getModelRow, getVersionRow } from "./db";
import { ensureModelImported } from "./import";

/** Result of an activation. */
export interface Activation {
  id: string;
  active_version: string;
  previous_version: string | null;
}

/**
 * Makes `version` the active version of model `id`. The version must be `ready`; it is loaded
 * once here (bytes verified, ORT session created) before anything changes, so a version that
 * cannot serve is refused and the current one keeps serving. Then the R2 pointer is written
 * (serving follows within `ACTIVE_POINTER_TTL_MS` in every isolate, at once in this one), D1 is
 * updated, and this isolate drops the previous version's session (released when its last request
 * finishes; other isolates drop it when they see the new pointer).
 */
export async function activateVersion(
  env: Env,
  config: Config,
  id: string,
  version: string,
): Promise<Activation> {
  await ensureModelImported(env, id);
  const model = await getModelRow(env.DB, id);
  if (!model) throw new ApiError("model_not_found", `no model named '${id}'`);
  const row = await getVersionRow(env.DB, id, version);
  if (row?.state !== "ready") {
    throw new ApiError("model_version_not_found", `model '${id}' has no version '${version}'`);
  }
  await withModel(env.MODELS, config, id, version, async () => undefined);
  const previous = model.active_version;
  // Written even when D1 already says `version`: re-activating repairs a pointer that disagrees.
  await env.MODELS.put(r2Keys.active(id), JSON.stringify({ version }), {
    httpMetadata: { contentType: "application/json" },
  });
  try {
    await d1("activate", () =>
      env.DB.prepare("UPDATE models SET active_version = ?, updated_at = ? WHERE id = ?")
        .bind(version, Date.now(), id)
        .run(),
    );
  } catch (error) {
    // Keep R2 and D1 in agreement: put the previous pointer back (best effort).
    if (previous !== null) {
      await env.MODELS.put(r2Keys.active(id), JSON.stringify({ version: previous })).catch(() => undefined);
    }
    throw error;
  }
  invalidateModel(id, previous === null || previous === version ? [] : [previous]);
  return { id, active_version: version, previous_version: previous };
}
