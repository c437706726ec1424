/**
 * Setting a version's baseline reference from chosen live hours (`PUT
 * /api/v1/models/:id/drift/reference`, docs/drift.md "Baseline reference"): the window must be
 * complete hours still kept, holding at least `DRIFT_BASELINE_MIN` inputs together; a training (or
 * uploaded) profile is never replaced (src/drift/baseline.ts).
 */
import type { Config } from "../config";
import { ApiError } from "../errors";
import { modelInput } from "../inference/kinds";
import { getManifest, resolveVersion } from "../storage/model-store";
import {
  BASELINE_SETTLE_MS,
  baselineProfile,
  referenceOrigin,
  replaceBaseline,
  trainingReference,
} from "./baseline";
import { DRIFT_KEEP_HOURS, HOUR_MS } from "./live";
import { readLive, readReferenceProfile } from "./report";

/** Sets the baseline of model `id` at `version` (else its active one) to its live hours [`from`, `to`). */
export async function setBaselineReference(
  env: Env,
  config: Pick<Config, "STATS_SHARDS" | "ACTIVE_POINTER_TTL_MS" | "DRIFT_BASELINE_MIN">,
  id: string,
  version: string | undefined,
  window: { from: number; to: number },
  now = Date.now(),
): Promise<{ profile: ReturnType<typeof baselineProfile>; bytes: number }> {
  const { from, to } = window;
  const current = Math.floor(now / HOUR_MS) * HOUR_MS;
  const oldest = current - (DRIFT_KEEP_HOURS - 1) * HOUR_MS;
  const iso = (t: number) => new Date(t).toISOString();
  const bad = (path: string, message: string) =>
    new ApiError("invalid_request", message, { extensions: { errors: [{ path, message }] } });
  if (from % HOUR_MS !== 0)
    throw bad("from", "from must be the start of a UTC hour, e.g. 2026-12-06T15:00:00Z");
  if (to % HOUR_MS !== 0) throw bad("to", "to must be the start of a UTC hour (the window's end, exclusive)");
  if (to <= from) throw bad("to", "to must be after from");
  if (from < oldest) {
    throw bad("from", `live profiles are kept ${DRIFT_KEEP_HOURS} h: from must be ${iso(oldest)} or later`);
  }
  if (to + BASELINE_SETTLE_MS > now) {
    throw bad(
      "to",
      `only complete hours can be a reference: to must be ${iso(current)} or earlier` +
        (to === current ? ` (and ${BASELINE_SETTLE_MS / 1000} s past it, for the hour's last inputs)` : ""),
    );
  }
  const resolved = await resolveVersion(env.MODELS, id, version, config.ACTIVE_POINTER_TTL_MS);
  const manifest = await getManifest(env.MODELS, id, resolved, config.ACTIVE_POINTER_TTL_MS);
  const kind = modelInput(manifest);
  if (kind === "tensor") {
    throw new ApiError(
      "invalid_request",
      `model '${id}' takes tensors: it has no input profile to take a reference from`,
    );
  }
  // A training profile is never replaced (checked again, atomically, when the baseline is stored).
  const existing = await readReferenceProfile(env.MODELS, id, resolved);
  if (existing && referenceOrigin(existing) !== "baseline") throw trainingReference(id, resolved);
  const live = await readLive(env, id, resolved, config.STATS_SHARDS, from, to - HOUR_MS);
  const hours = [...live.values()];
  const count = hours.reduce((n, h) => n + h.count, 0);
  if (count < config.DRIFT_BASELINE_MIN) {
    throw new ApiError(
      "drift_window_too_small",
      `the window ${iso(from)} to ${iso(to)} holds ${count} inputs of version '${resolved}'; a reference needs at ` +
        `least ${config.DRIFT_BASELINE_MIN} (DRIFT_BASELINE_MIN): choose more hours (GET /api/v1/models/${id}/drift?hours=48 shows each hour's count)`,
      { extensions: { count, min_count: config.DRIFT_BASELINE_MIN } },
    );
  }
  const profile = baselineProfile({
    model: { id, version: resolved },
    kind,
    labels: manifest.labels,
    hours,
    from,
    to,
    how: "admin",
    now,
  });
  await replaceBaseline(env.MODELS, profile);
  return { profile, bytes: new TextEncoder().encode(JSON.stringify(profile)).byteLength };
}
