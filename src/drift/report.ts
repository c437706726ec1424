/**
 * Drift of a model version: its live profiles (summed over the `DriftShard` shards) per UTC hour
 * against its reference profile (R2, `r2Keys.profile`), as PSI per signal (src/drift/profile.ts).
 * `GET /api/v1/models/:id/drift` shows it, the model's metadata shows its status, and the hourly
 * cron logs a warning once per hour for a drifting model (`warnDrift`).
 */
import type { Config } from "../config";
import { d1 } from "../contracts/d1";
import { r2Keys } from "../contracts/r2-keys";
import { ApiError } from "../errors";
import { modelInput } from "../inference/kinds";
import type { Logger } from "../log";
import { getManifest, resolveVersion } from "../storage/model-store";
import { withTimeout } from "../timeout";
import {
  type BaselinePending,
  baselineHour,
  baselinePending,
  baselineProfile,
  freezeBaseline,
  type ReferenceOrigin,
  referenceOrigin,
} from "./baseline";
import { DRIFT_KEEP_HOURS, driftShard, HOUR_MS, type HourProfile, mergeProfiles } from "./live";
import {
  MAX_PROFILE_BYTES,
  MIN_DRIFT_COUNT,
  PSI_EPSILON,
  PSI_WARNING,
  psiBySignal,
  type ReferenceProfile,
  referenceProfileSchema,
} from "./profile";

/** A version's drift status: over the threshold in the current or the previous hour, or not, or unknown. */
export type DriftStatus = "ok" | "warning" | "unknown";

/** One hour of `DriftReport`. */
export interface DriftHour {
  /** The hour's start (UTC, ISO 8601). */
  start: string;
  /** Inputs scored in the hour. */
  count: number;
  /** PSI per signal; null without a reference profile or below `MIN_DRIFT_COUNT` inputs. */
  psi: Record<string, number> | null;
  /** The largest PSI of the hour (null as `psi`). */
  max_psi: number | null;
  /** `warning` at or above the threshold, `insufficient` without PSI. */
  status: "ok" | "warning" | "insufficient";
}

/** `GET /api/v1/models/:id/drift`'s answer. */
export interface DriftReport {
  model: { id: string; version: string };
  drift: DriftStatus;
  threshold: number;
  min_count: number;
  epsilon: number;
  /**
   * The reference profile: `origin` `training` (training inputs, the profiling script or the
   * upload's profile) or `baseline` (the version's own live inputs of `window`); null when the
   * version has none yet.
   */
  reference: {
    origin: ReferenceOrigin;
    source: string;
    count: number;
    created_at: string;
    window?: { start: string; end: string };
  } | null;
  /** Without a reference: why, and how far the version is from a baseline; null with one. */
  reference_pending: BaselinePending | null;
  /** The requested hours, oldest first, the current (partial) hour last; hours without traffic have count 0. */
  hours: DriftHour[];
}

/** How long a drift read waits for the shards before answering 503. */
const READ_TIMEOUT_MS = 10_000;

/** The version's reference profile, or null when it has none (or an unreadable one). */
export async function readReferenceProfile(
  bucket: R2Bucket,
  id: string,
  version: string,
): Promise<ReferenceProfile | null> {
  const object = await bucket.get(r2Keys.profile(id, version));
  if (!object || object.size > MAX_PROFILE_BYTES) return null;
  const parsed = referenceProfileSchema.safeParse(await object.json().catch(() => null));
  return parsed.success ? parsed.data : null;
}

/** Live profiles of `version` for hours [`from`, `to`], summed over all `shards` shards. */
export async function readLive(
  env: Env,
  id: string,
  version: string,
  shards: number,
  from: number,
  to: number,
): Promise<Map<number, HourProfile>> {
  let parts: HourProfile[][];
  try {
    parts = await withTimeout(
      Promise.all(Array.from({ length: shards }, (_, i) => driftShard(env, id, i).read(version, from, to))),
      READ_TIMEOUT_MS,
      "drift shards",
    );
  } catch (cause) {
    throw new ApiError("statistics_unavailable", `live profiles of model '${id}' could not be read`, {
      cause,
      headers: { "retry-after": "1" },
    });
  }
  return new Map(mergeProfiles(parts.flat()).map((p) => [p.hour, p]));
}

/** PSI per hour of the hours' profiles against `reference`. */
export function driftHours(
  reference: ReferenceProfile | null,
  live: ReadonlyMap<number, HourProfile>,
  from: number,
  hours: number,
): DriftHour[] {
  return Array.from({ length: hours }, (_, i) => {
    const hour = from + i * HOUR_MS;
    const p = live.get(hour);
    const count = p?.count ?? 0;
    const psi = reference && p && count >= MIN_DRIFT_COUNT ? psiBySignal(reference.signals, p.signals) : null;
    const values = psi ? Object.values(psi) : [];
    const max = values.length > 0 ? Math.max(...values) : null;
    return {
      start: new Date(hour).toISOString(),
      count,
      psi: max === null ? null : psi,
      max_psi: max,
      status: max === null ? "insufficient" : max >= PSI_WARNING ? "warning" : "ok",
    };
  });
}

/** The status of the last two hours (the current one and the one before). */
export function driftStatus(hours: readonly DriftHour[]): DriftStatus {
  const recent = hours.slice(-2);
  if (recent.some((h) => h.status === "warning")) return "warning";
  return recent.some((h) => h.status === "ok") ? "ok" : "unknown";
}

/**
 * Drift of model `id` at `version` (else its active version) over the last `hours` hours ending
 * with `now`'s. 404 for an unknown model or version (through `resolveVersion`). A version without
 * a reference profile gets its baseline here (src/drift/baseline.ts): its live hours of the whole
 * 48 h kept are read, and the first complete one with `DRIFT_BASELINE_MIN` inputs is frozen (once:
 * create-only in R2); until then `reference_pending` says how far it is.
 */
export async function readDrift(
  env: Env,
  config: Pick<Config, "STATS_SHARDS" | "ACTIVE_POINTER_TTL_MS" | "DRIFT_BASELINE_MIN">,
  id: string,
  version: string | undefined,
  hours: number,
  now = Date.now(),
): Promise<DriftReport> {
  const resolved = await resolveVersion(env.MODELS, id, version, config.ACTIVE_POINTER_TTL_MS);
  // 404 for a version that does not exist (the manifest is cached by the serving path).
  const manifest = await getManifest(env.MODELS, id, resolved, config.ACTIVE_POINTER_TTL_MS);
  const span = Math.max(1, Math.min(DRIFT_KEEP_HOURS, hours));
  const last = Math.floor(now / HOUR_MS) * HOUR_MS;
  const from = last - (span - 1) * HOUR_MS;
  let [reference, live] = await Promise.all([
    readReferenceProfile(env.MODELS, id, resolved),
    readLive(env, id, resolved, config.STATS_SHARDS, from, last),
  ]);
  // Without a reference, every kept hour is read: the baseline is the first complete one with enough inputs.
  const oldest = last - (DRIFT_KEEP_HOURS - 1) * HOUR_MS;
  if (!reference && from > oldest)
    live = await readLive(env, id, resolved, config.STATS_SHARDS, oldest, last);
  const kind = modelInput(manifest);
  let pending: BaselinePending | null = null;
  if (!reference) {
    const hour = kind === "tensor" ? undefined : baselineHour(live.values(), config.DRIFT_BASELINE_MIN, now);
    if (hour && kind !== "tensor") {
      const profile = baselineProfile({
        model: { id, version: resolved },
        kind,
        labels: manifest.labels,
        hours: [hour],
        from: hour.hour,
        to: hour.hour + HOUR_MS,
        how: "automatic",
        now,
      });
      reference = (await freezeBaseline(env.MODELS, profile)).reference;
    }
    if (!reference) pending = baselinePending(live.values(), config.DRIFT_BASELINE_MIN, now, kind);
  }
  const windows = driftHours(reference, live, from, span);
  return {
    model: { id, version: resolved },
    drift: driftStatus(windows),
    threshold: PSI_WARNING,
    min_count: MIN_DRIFT_COUNT,
    epsilon: PSI_EPSILON,
    reference: reference && {
      origin: referenceOrigin(reference),
      source: reference.source,
      count: reference.count,
      created_at: reference.created_at,
      ...(reference.window && { window: reference.window }),
    },
    reference_pending: pending,
    hours: windows,
  };
}

/**
 * Logs `model_drift` (warn) for each of the report's last two hours over the threshold, once per
 * model, version and hour (remembered by the model's shard 0). Fields: model, version, hour, count,
 * the signals over the threshold with their PSI; never inputs.
 */
export async function warnDrift(env: Env, report: DriftReport, logger: Logger): Promise<number> {
  let warned = 0;
  for (const h of report.hours.slice(-2)) {
    if (h.status !== "warning" || !h.psi) continue;
    const hour = Date.parse(h.start);
    if (!(await driftShard(env, report.model.id, 0).warnOnce(report.model.version, hour))) continue;
    warned++;
    logger.log("warn", "model_drift", {
      model: report.model.id,
      version: report.model.version,
      hour: h.start,
      count: h.count,
      threshold: PSI_WARNING,
      signals: Object.fromEntries(Object.entries(h.psi).filter(([, v]) => v >= PSI_WARNING)),
    });
  }
  return warned;
}

/** The active version's drift for the model's metadata: its status and where its reference comes from. */
export interface ModelDrift {
  drift: DriftStatus;
  /** `pending`: no reference yet (a baseline is taken from live traffic, docs/drift.md). */
  reference?: ReferenceOrigin | "pending";
}

/**
 * The model's drift status for its metadata (active version, last two hours), logging the warning
 * once per hour; "unknown" when it cannot be read (the metadata never fails on it).
 */
export async function modelDriftStatus(
  env: Env,
  config: Pick<Config, "STATS_SHARDS" | "ACTIVE_POINTER_TTL_MS" | "DRIFT" | "DRIFT_BASELINE_MIN">,
  id: string,
  logger: Logger,
): Promise<ModelDrift> {
  if (config.DRIFT === "off") return { drift: "unknown" };
  try {
    const report = await readDrift(env, config, id, undefined, 2);
    if (report.drift === "warning") await warnDrift(env, report, logger);
    return { drift: report.drift, reference: report.reference?.origin ?? "pending" };
  } catch {
    return { drift: "unknown" };
  }
}

/** Most models the hourly check reads (the registry's first, by id). */
const MAX_CHECKED_MODELS = 200;

/**
 * The cron's drift check: every registered model with an active version, its last two hours; logs
 * each warning once per hour (`warnDrift`). A model that cannot be read counts as failed.
 */
export async function checkDrift(
  env: Env,
  config: Pick<Config, "STATS_SHARDS" | "ACTIVE_POINTER_TTL_MS" | "DRIFT" | "DRIFT_BASELINE_MIN">,
  logger: Logger,
): Promise<{ models: number; warnings: number; failed: number }> {
  if (config.DRIFT === "off") return { models: 0, warnings: 0, failed: 0 };
  const { results } = await d1("list models", () =>
    env.DB.prepare(
      "SELECT id, active_version FROM models WHERE active_version IS NOT NULL ORDER BY id LIMIT ?",
    )
      .bind(MAX_CHECKED_MODELS)
      .all<{ id: string; active_version: string }>(),
  );
  let warnings = 0;
  let failed = 0;
  for (const row of results) {
    try {
      warnings += await warnDrift(env, await readDrift(env, config, row.id, row.active_version, 2), logger);
    } catch {
      failed++;
    }
  }
  return { models: results.length, warnings, failed };
}
