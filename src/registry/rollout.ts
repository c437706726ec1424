/**
 * Traffic split and shadow versions of a model (docs/rollout.md): validated registry writes of the
 * active pointer `models/<id>/active.json` (which every isolate follows within
 * `ACTIVE_POINTER_TTL_MS`, at once in this one), mirrored in D1 (`models.split`, `models.shadows`),
 * and their views. Every pointer write goes through `updatePointer`: a conditional R2 write (no
 * lost update between concurrent registry writes), then D1, with the previous pointer put back if
 * D1 fails.
 */
import type { Config } from "../config";
import { d1 } from "../contracts/d1";
import { type ActivePointer, activePointerSchema, MODEL_VERSION_RE } from "../contracts/manifest";
import { r2Keys } from "../contracts/r2-keys";
import { MAX_SHADOWS, MAX_SPLIT_VERSIONS, type Shadow, type Split, splitOrder } from "../contracts/rollout";
import { ApiError } from "../errors";
import { withModel } from "../inference/engine";
import { readVersionTraffic } from "../metering/stats";
import { comparisonView } from "../rollout/comparison";
import { readShadowSums } from "../rollout/shadow-stats";
import { invalidateModel, versionsInUse } from "../storage/model-store";
import { getModelRow, getVersionRows, rolloutColumns, rolloutOfRow } from "./db";
import { ensureModelImported } from "./import";

/** The rollout state of a model as the registry API shows it. */
export interface RolloutView {
  id: string;
  active_version: string | null;
  split: Split | null;
  shadows: Shadow[];
}

const ATTEMPTS = 5;

/**
 * Replaces model `id`'s pointer with `next(current)` (see the module comment); returns the new
 * pointer. Versions the pointer stops using are released in this isolate.
 */
export async function updatePointer(
  env: Env,
  id: string,
  next: (current: ActivePointer | null) => ActivePointer,
): Promise<ActivePointer> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const object = await env.MODELS.get(r2Keys.active(id));
    const text = object === null ? null : await object.text();
    const parsed = text === null ? null : activePointerSchema.safeParse(safeJson(text));
    const current = parsed?.success ? parsed.data : null;
    const pointer = next(current);
    const written = await env.MODELS.put(r2Keys.active(id), JSON.stringify(pointer), {
      httpMetadata: { contentType: "application/json" },
      ...(object === null ? {} : { onlyIf: { etagMatches: object.etag } }),
    });
    if (written === null) continue; // Another registry write came first: start again from it.
    const { split, shadows } = rolloutColumns(pointer);
    try {
      await d1("update pointer", () =>
        env.DB.prepare(
          "UPDATE models SET active_version = ?, split = ?, shadows = ?, updated_at = ? WHERE id = ?",
        )
          .bind(pointer.version, split, shadows, Date.now(), id)
          .run(),
      );
    } catch (error) {
      // Keep R2 and D1 in agreement: put the previous pointer back (best effort).
      if (text !== null) await env.MODELS.put(r2Keys.active(id), text).catch(() => undefined);
      throw error;
    }
    const inUse = versionsInUse(pointer);
    invalidateModel(id, current === null ? [] : [...versionsInUse(current)].filter((v) => !inUse.has(v)));
    return pointer;
  }
  throw new ApiError(
    "registry_unavailable",
    `model '${id}' is being changed by other registry writes; retry`,
    {
      headers: { "retry-after": "1" },
    },
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * The ready versions of model `id` (404 `model_not_found` without the model), after refusing with
 * 404 `model_version_not_found` any of `wanted` that is not one of them, naming them and the
 * versions there are.
 */
async function readyVersions(env: Env, id: string, wanted: readonly string[]) {
  await ensureModelImported(env, id);
  const model = await getModelRow(env.DB, id);
  if (!model)
    throw new ApiError("model_not_found", `no model named '${id}' (GET /api/v1/models lists the models)`);
  const rows = (await getVersionRows(env.DB, id)).filter((r) => r.state === "ready");
  const versions = rows.map((r) => r.version);
  const unknown = wanted.filter((v) => !versions.includes(v));
  if (unknown.length > 0) {
    throw new ApiError(
      "model_version_not_found",
      `model '${id}' has no ready version ${unknown.map((v) => `'${v.slice(0, 64)}'`).join(", ")}; ` +
        `its versions: ${versions.slice(-20).join(", ") || "none"}`,
      { extensions: { unknown: unknown.map((v) => v.slice(0, 64)), versions } },
    );
  }
  return { model, rows };
}

/**
 * Checks a split's shape: 1..`MAX_SPLIT_VERSIONS` model versions, each an integer percent 1..100,
 * summing to 100 (400 `invalid_split` otherwise, with the problems in `errors`).
 */
export function checkSplit(split: Record<string, unknown>): Split {
  const versions = Object.keys(split);
  const problems: { path: string; message: string }[] = [];
  if (versions.length === 0) problems.push({ path: "split", message: "names no version" });
  if (versions.length > MAX_SPLIT_VERSIONS) {
    problems.push({
      path: "split",
      message: `names ${versions.length} versions; at most ${MAX_SPLIT_VERSIONS}`,
    });
  }
  let sum = 0;
  for (const version of versions) {
    const pct = split[version];
    const path = `split.${version.slice(0, 64)}`;
    if (!MODEL_VERSION_RE.test(version)) problems.push({ path, message: "is not a model version" });
    if (typeof pct !== "number" || !Number.isInteger(pct) || pct < 1 || pct > 100) {
      problems.push({ path, message: "must be an integer percent from 1 to 100 (leave a 0 % version out)" });
    } else sum += pct;
  }
  if (problems.length === 0 && sum !== 100) {
    problems.push({ path: "split", message: `percentages sum to ${sum}, not 100` });
  }
  if (problems.length > 0) {
    throw new ApiError(
      "invalid_split",
      `${problems.map((p) => `${p.path}: ${p.message}`).join("; ")} ` +
        `(example: {"split": {"4": 90, "5": 10}}; {"5": 100} promotes version 5)`,
      { extensions: { errors: problems } },
    );
  }
  return Object.fromEntries(splitOrder(split as Split).map((v) => [v, split[v] as number]));
}

/**
 * Sets model `id`'s traffic split (checked by `checkSplit`; every version must be ready and is
 * loaded once before anything changes, as activation does). A version with 100 % is promoted: it
 * becomes the active version and the split is cleared. A version that starts serving stops being a
 * shadow. The active version is unchanged by a split (it is what serves callers without an
 * identity, and what `DELETE` of the split returns to).
 */
export async function setSplit(
  env: Env,
  config: Config,
  id: string,
  body: Record<string, unknown>,
): Promise<Pick<RolloutView, "id" | "active_version" | "split">> {
  const split = checkSplit(body);
  const versions = Object.keys(split);
  const { model } = await readyVersions(env, id, versions);
  for (const version of versions) await withModel(env.MODELS, config, id, version, async () => undefined);
  const promoted = versions.length === 1 ? versions[0] : undefined;
  const pointer = await updatePointer(env, id, (current) => {
    const active = promoted ?? current?.version ?? model.active_version ?? largest(split);
    const serving = new Set([active, ...(promoted ? [] : versions)]);
    const shadows = (current?.shadows ?? []).filter((s) => !serving.has(s.version));
    return {
      version: active,
      ...(promoted ? {} : { split }),
      ...(shadows.length > 0 ? { shadows } : {}),
    };
  });
  return { id, active_version: pointer.version, split: pointer.split ?? null };
}

function largest(split: Split): string {
  return splitOrder(split).reduce((a, b) => ((split[b] ?? 0) > (split[a] ?? 0) ? b : a));
}

/** Clears model `id`'s traffic split: every caller gets the active version again. */
export async function clearSplit(
  env: Env,
  id: string,
): Promise<Pick<RolloutView, "id" | "active_version" | "split">> {
  await readyVersions(env, id, []);
  const pointer = await updatePointer(env, id, (current) => {
    if (current === null) throw new ApiError("model_not_found", `model '${id}' has no active version`);
    const { split: _cleared, ...rest } = current;
    return rest;
  });
  return { id, active_version: pointer.version, split: null };
}

/**
 * Checks shadows' shape: 1..`MAX_SHADOWS` distinct model versions, each with a `sample_rate` in
 * (0, 1] (400 `invalid_shadow` otherwise).
 */
export function checkShadows(shadows: readonly { version: string; sample_rate: unknown }[]): Shadow[] {
  const problems: { path: string; message: string }[] = [];
  if (shadows.length === 0)
    problems.push({ path: "shadows", message: "names no version (DELETE clears them)" });
  if (shadows.length > MAX_SHADOWS) {
    problems.push({ path: "shadows", message: `names ${shadows.length} versions; at most ${MAX_SHADOWS}` });
  }
  const seen = new Set<string>();
  shadows.forEach((s, i) => {
    if (!MODEL_VERSION_RE.test(s.version)) {
      problems.push({ path: `shadows.${i}.version`, message: "is not a model version" });
    }
    if (seen.has(s.version)) problems.push({ path: `shadows.${i}.version`, message: "is named twice" });
    seen.add(s.version);
    const rate = s.sample_rate;
    if (typeof rate !== "number" || !(rate > 0 && rate <= 1)) {
      problems.push({
        path: `shadows.${i}.sample_rate`,
        message: "must be a number in (0, 1] (the share of requests the shadow also scores)",
      });
    }
  });
  if (problems.length > 0) {
    throw new ApiError(
      "invalid_shadow",
      `${problems.map((p) => `${p.path}: ${p.message}`).join("; ")} ` +
        `(example: {"shadows": [{"version": "5", "sample_rate": 0.1}]})`,
      { extensions: { errors: problems } },
    );
  }
  return shadows.map((s) => ({ version: s.version, sample_rate: s.sample_rate as number }));
}

/**
 * Sets model `id`'s shadow versions (checked by `checkShadows`): each must be ready, of a text or
 * image model (a tensor model has no labelled scores to compare), not a version that serves (the
 * active one or one in the split: 400 `invalid_shadow`), and is loaded once before anything changes.
 */
export async function setShadows(
  env: Env,
  config: Config,
  id: string,
  body: readonly { version: string; sample_rate: unknown }[],
): Promise<{ id: string; shadows: Shadow[] }> {
  const shadows = checkShadows(body);
  const { rows } = await readyVersions(
    env,
    id,
    shadows.map((s) => s.version),
  );
  for (const { version } of shadows) {
    const kind = (JSON.parse(rows.find((r) => r.version === version)?.manifest ?? "{}") as { kind?: string })
      .kind;
    if (kind === "tensor") {
      throw new ApiError(
        "invalid_shadow",
        `version '${version}' of '${id}' is a tensor model; shadows compare labelled scores (text and image models only)`,
      );
    }
    await withModel(env.MODELS, config, id, version, async () => undefined);
  }
  const pointer = await updatePointer(env, id, (current) => {
    if (current === null) throw new ApiError("model_not_found", `model '${id}' has no active version`);
    const serving = [current.version, ...Object.keys(current.split ?? {})];
    const clash = shadows.filter((s) => serving.includes(s.version)).map((s) => s.version);
    if (clash.length > 0) {
      throw new ApiError(
        "invalid_shadow",
        `version ${clash.map((v) => `'${v}'`).join(", ")} of '${id}' already serves traffic ` +
          `(active: '${current.version}'${current.split ? `, split: ${JSON.stringify(current.split)}` : ""}); ` +
          "a shadow must be a version that does not serve",
        { extensions: { serving } },
      );
    }
    return { ...current, shadows };
  });
  return { id, shadows: pointer.shadows ?? [] };
}

/** Clears model `id`'s shadow versions (their comparisons are kept). */
export async function clearShadows(env: Env, id: string): Promise<{ id: string; shadows: Shadow[] }> {
  await readyVersions(env, id, []);
  await updatePointer(env, id, (current) => {
    if (current === null) throw new ApiError("model_not_found", `model '${id}' has no active version`);
    const { shadows: _cleared, ...rest } = current;
    return rest;
  });
  return { id, shadows: [] };
}

/** Model `id`'s rollout state, from D1 (404 `model_not_found`). */
export async function readRollout(env: Env, id: string): Promise<RolloutView> {
  const { model } = await readyVersions(env, id, []);
  return { id, active_version: model.active_version, ...rolloutOfRow(model) };
}

/**
 * `GET /api/v1/models/:id/shadow`: the model's shadow versions, each with its running comparisons
 * against every version that answered while it was a shadow (summed over the `ShadowShard`s).
 */
export async function shadowReport(env: Env, config: Config, id: string) {
  const { shadows } = await readRollout(env, id);
  const sums = await readShadowSums(env, id, config.STATS_SHARDS);
  return {
    id,
    shadows: shadows.map((s) => ({
      ...s,
      comparisons: sums
        .filter((p) => p.shadow === s.version)
        .sort((a, b) => (a.serving < b.serving ? -1 : a.serving > b.serving ? 1 : 0))
        .map(comparisonView),
    })),
  };
}

/** At most this many versions (the newest, besides those in use) are shown by `modelTraffic`. */
const TRAFFIC_VERSIONS = 10;

/**
 * `GET /api/v1/models/:id/traffic`: per version (those in use and the newest ready ones), the
 * share the split or activation gives it and the requests it scored (`readVersionTraffic`).
 */
export async function modelTraffic(env: Env, config: Config, id: string, now: number) {
  const { model, rows } = await readyVersions(env, id, []);
  const { split, shadows } = rolloutOfRow(model);
  const inUse = new Set([
    ...(model.active_version === null ? [] : [model.active_version]),
    ...Object.keys(split ?? {}),
    ...shadows.map((s) => s.version),
  ]);
  const versions = rows
    .map((r) => r.version)
    .filter((v, i, all) => inUse.has(v) || i >= all.length - TRAFFIC_VERSIONS);
  const traffic = await Promise.all(
    versions.map((v) => readVersionTraffic(env, id, v, config.STATS_SHARDS, now)),
  );
  return {
    id,
    as_of: new Date(now).toISOString(),
    active_version: model.active_version,
    split,
    versions: versions.map((version, i) => ({
      version,
      share: split ? (split[version] ?? 0) : version === model.active_version ? 100 : 0,
      shadow_sample_rate: shadows.find((s) => s.version === version)?.sample_rate ?? null,
      ...(traffic[i] as Awaited<ReturnType<typeof readVersionTraffic>>),
    })),
  };
}
