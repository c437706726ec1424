/**
 * Baseline references from live traffic (docs/drift.md "Baseline reference"): a model version
 * without a reference profile (an imported model such as `moderation-image`, whose training data we
 * do not have; an upload without a `profile` part) gets one from its own live profiles. The first
 * complete UTC hour with at least `DRIFT_BASELINE_MIN` inputs is frozen as its reference, marked
 * `origin: "baseline"` with the hour and count; an admin may set (or reset) it from chosen hours
 * (`PUT /api/v1/models/:id/drift/reference`). A training (or uploaded) profile is never replaced:
 * a baseline is only ever created where no profile exists (R2 `If-None-Match: *`), and a reset
 * only replaces the baseline it read (`If-Match` its etag).
 */
import { r2Keys } from "../contracts/r2-keys";
import { ApiError } from "../errors";
import { HOUR_MS, type HourProfile, mergeProfiles } from "./live";
import {
  PROFILE_FORMAT,
  profiledLabels,
  type ReferenceProfile,
  referenceProfileSchema,
  type Signals,
  signalBins,
} from "./profile";

/**
 * An hour counts as complete this long after it ended: a batch of its last 50 ms may still be on
 * its way (delivery retries back off up to ~1 s), so the frozen counts are the hour's final ones.
 */
export const BASELINE_SETTLE_MS = 60_000;

/** What a version's reference is, as the drift report and the model metadata name it. */
export type ReferenceOrigin = "training" | "baseline";

/** A profile's origin: `baseline` when marked so; `training` for training, profiling script and upload profiles. */
export function referenceOrigin(profile: ReferenceProfile): ReferenceOrigin {
  return profile.origin ?? "training";
}

/** Whether the hour starting at `hour` had ended (and settled) by `now`. */
export function hourComplete(hour: number, now: number): boolean {
  return hour + HOUR_MS + BASELINE_SETTLE_MS <= now;
}

/**
 * The hour that becomes a version's baseline: the oldest complete hour of `live` with at least
 * `min` inputs, or undefined when there is none yet.
 */
export function baselineHour(live: Iterable<HourProfile>, min: number, now: number): HourProfile | undefined {
  return [...live]
    .filter((h) => hourComplete(h.hour, now) && h.count >= min)
    .sort((a, b) => a.hour - b.hour)[0];
}

/** Why a version has no baseline yet: the most inputs a complete hour has had, and the current hour's. */
export interface BaselinePending {
  /** Inputs one complete hour needs (`DRIFT_BASELINE_MIN`). */
  min_count: number;
  /** The complete hour (of the 48 kept) with the most inputs so far; null when none had any. */
  best_hour: { start: string; count: number } | null;
  /** Inputs in the current (incomplete) hour so far. */
  current_count: number;
  detail: string;
}

/** The pending state of a version without a reference, from its kept live hours. */
export function baselinePending(
  live: Iterable<HourProfile>,
  min: number,
  now: number,
  kind: "text" | "image" | "tensor",
): BaselinePending {
  const current = Math.floor(now / HOUR_MS) * HOUR_MS;
  let best: HourProfile | undefined;
  let currentCount = 0;
  for (const h of live) {
    if (h.hour === current) currentCount = h.count;
    else if (hourComplete(h.hour, now) && (!best || h.count > best.count)) best = h;
  }
  const detail =
    kind === "tensor"
      ? "a tensor model has no input profile, so no baseline can be taken"
      : `no reference profile: the first complete UTC hour with at least ${min} inputs becomes the baseline ` +
        `(most in a complete hour so far: ${best?.count ?? 0}; this hour so far: ${currentCount})`;
  return {
    min_count: min,
    best_hour: best ? { start: new Date(best.hour).toISOString(), count: best.count } : null,
    current_count: currentCount,
    detail,
  };
}

/**
 * A reference profile from live hours (summed): the model's signals padded to their full bins
 * (a shard returns each histogram up to its last non-empty bin), marked `origin: "baseline"` with
 * the window it covers (`from` inclusive, `to` exclusive, hour starts).
 */
export function baselineProfile(args: {
  model: { id: string; version: string };
  kind: "text" | "image";
  labels: readonly string[];
  hours: readonly HourProfile[];
  from: number;
  to: number;
  how: "automatic" | "admin";
  now?: number;
}): ReferenceProfile & { window: { start: string; end: string } } {
  const [sum] = mergeProfiles(
    args.hours.map((h) => ({ ...h, hour: args.from, version: args.model.version })),
  );
  const signals: Signals = {};
  for (const [name, bins] of Object.entries(sum?.signals ?? {})) {
    const want = signalBins(name, args.kind, profiledLabels(args.labels));
    if (want === undefined) continue;
    signals[name] = Array.from({ length: want }, (_, i) => bins[i] ?? 0);
  }
  const count = sum?.count ?? 0;
  const span = `${new Date(args.from).toISOString()} to ${new Date(args.to).toISOString()}`;
  return {
    format: PROFILE_FORMAT,
    model: args.model,
    kind: args.kind,
    source:
      args.how === "automatic"
        ? `baseline: live inputs of the first complete UTC hour with enough of them, ${span} (${count} inputs)`
        : `baseline: live inputs of ${span} (${count} inputs), set by an admin`,
    created_at: new Date(args.now ?? Date.now()).toISOString(),
    count,
    signals,
    origin: "baseline",
    window: { start: new Date(args.from).toISOString(), end: new Date(args.to).toISOString() },
  };
}

/**
 * Stores `profile` as the version's reference only if the version has none (R2 `If-None-Match: *`,
 * atomic: of concurrent freezes exactly one is stored, and a training profile is never replaced).
 * Returns the reference the version has afterwards and whether it is this call's.
 */
export async function freezeBaseline(
  bucket: R2Bucket,
  profile: ReferenceProfile,
): Promise<{ reference: ReferenceProfile | null; stored: boolean }> {
  const key = r2Keys.profile(profile.model.id, profile.model.version);
  const put = await bucket.put(key, JSON.stringify(profile), {
    httpMetadata: { contentType: "application/json" },
    onlyIf: new Headers({ "if-none-match": "*" }),
  });
  if (put) return { reference: profile, stored: true };
  const object = await bucket.get(key);
  const parsed = referenceProfileSchema.safeParse(await object?.json().catch(() => null));
  return { reference: parsed.success ? parsed.data : null, stored: false };
}

/** 409 `reference_is_training`: the version's reference is of its training inputs and is kept. */
export function trainingReference(id: string, version: string): ApiError {
  return new ApiError(
    "reference_is_training",
    `version '${version}' of model '${id}' has a reference profile of its training inputs, which a live ` +
      "window never replaces; to compare against live traffic instead, upload the same model as a new " +
      "version without a profile",
  );
}

/**
 * Sets (or resets) the version's baseline to `profile` (the admin route): created where the
 * version has no profile, else replacing only a baseline — 409 `reference_is_training` for a
 * training or uploaded profile. Conditional on what was read (`If-None-Match: *`, or `If-Match`
 * the baseline's etag), so a profile stored meanwhile is never overwritten unseen; retried on such
 * a race.
 */
export async function replaceBaseline(bucket: R2Bucket, profile: ReferenceProfile): Promise<void> {
  const key = r2Keys.profile(profile.model.id, profile.model.version);
  for (let attempt = 0; attempt < 3; attempt++) {
    const object = await bucket.get(key);
    let onlyIf: Headers | R2Conditional;
    if (object === null) onlyIf = new Headers({ "if-none-match": "*" });
    else {
      const parsed = referenceProfileSchema.safeParse(await object.json().catch(() => null));
      if (!parsed.success || referenceOrigin(parsed.data) !== "baseline") {
        throw trainingReference(profile.model.id, profile.model.version);
      }
      onlyIf = { etagMatches: object.etag };
    }
    const put = await bucket.put(key, JSON.stringify(profile), {
      httpMetadata: { contentType: "application/json" },
      onlyIf,
    });
    if (put) return;
  }
  throw new ApiError("registry_unavailable", "the reference profile kept changing while it was set; retry", {
    headers: { "retry-after": "1" },
  });
}
