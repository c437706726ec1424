/**
 * Switching a model's active version (activation, rollback). The serving path reads the R2
 * pointer `models/<id>/active.json`, cached per isolate for `ACTIVE_POINTER_TTL_MS`; D1's
 * `models.active_version` mirrors it for the registry API.
 */
import type { Config } from "../config";
import { ApiError } from "../errors";
import { withModel } from "../inference/engine";
import { getModelRow, getVersionRow } from "./db";
import { ensureModelImported } from "./import";
import { updatePointer } from "./rollout";

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
 * finishes; other isolates drop it when they see the new pointer); see `updatePointer`. A traffic
 * split is cleared, and `version` is no longer a shadow.
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
  // An activation sends every caller to `version`: it clears a traffic split, and `version` stops
  // being a shadow (the other shadows stay; docs/rollout.md).
  await updatePointer(env, id, (current) => {
    const shadows = (current?.shadows ?? []).filter((s) => s.version !== version);
    return { version, ...(shadows.length > 0 ? { shadows } : {}) };
  });
  return { id, active_version: version, previous_version: previous };
}
