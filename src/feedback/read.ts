/**
 * Reading feedback back: live quality per model version (`GET /api/v1/models/:id/quality`) and the
 * labelled texts a training job with `feedback: true` adds to its dataset.
 */
import type { z } from "zod";
import type { ModelQualitySchema } from "../answers";
import { d1 } from "../contracts/d1";
import { ApiError } from "../errors";
import type { FieldSpec } from "../jobs/dataset";
import { getModelRow, getVersionRows } from "../registry/db";
import { ensureModelImported } from "../registry/import";
import { type DecisionRule, type LabelledItem, MIN_AUC_CLASS, versionQuality } from "./quality";

/** The most recent feedback rows one quality request reads (bounded work and memory). */
export const QUALITY_WINDOW = 20_000;

/** The answer of `GET /api/v1/models/:id/quality`. */
export type ModelQuality = z.input<typeof ModelQualitySchema>;

/**
 * Live quality of every version of model `id` from the latest `QUALITY_WINDOW` feedback rows of all
 * callers (aggregates only); 404 `model_not_found`. Versions in registry order, then any version
 * that has feedback but is gone from the registry.
 */
export async function modelQuality(env: Env, id: string): Promise<ModelQuality> {
  await ensureModelImported(env, id);
  const model = await getModelRow(env.DB, id);
  if (!model)
    throw new ApiError("model_not_found", `no model named '${id}' (GET /api/v1/models lists the models)`);
  const versions = (await getVersionRows(env.DB, id)).filter((v) => v.state === "ready");
  const { results } = await d1("read feedback", () =>
    env.DB.prepare(
      "SELECT model_version, labels, scores FROM feedback WHERE model_id = ? ORDER BY predicted_at DESC LIMIT ?",
    )
      .bind(id, QUALITY_WINDOW)
      .all<{ model_version: string; labels: string; scores: string }>(),
  );
  const byVersion = new Map<string, LabelledItem[]>();
  for (const r of results) {
    const list = byVersion.get(r.model_version) ?? [];
    list.push({
      labels: JSON.parse(r.labels) as string[],
      scores: JSON.parse(r.scores) as Record<string, number>,
    });
    byVersion.set(r.model_version, list);
  }
  const rules = new Map<string, DecisionRule>();
  for (const v of versions) {
    const manifest = JSON.parse(v.manifest) as {
      task?: string;
      labels?: string[];
      thresholds?: Record<string, number>;
    };
    rules.set(v.version, {
      task: manifest.task === "binary" || manifest.task === "multilabel" ? manifest.task : "multiclass",
      labels: manifest.labels ?? (JSON.parse(v.labels) as string[]),
      thresholds: manifest.thresholds,
    });
  }
  for (const [version, items] of byVersion) {
    // A deleted version's feedback: decide by argmax over the labels its scores name.
    if (!rules.has(version))
      rules.set(version, { task: "multiclass", labels: Object.keys(items[0]?.scores ?? {}) });
  }
  return {
    id,
    active_version: model.active_version,
    min_auc_class: MIN_AUC_CLASS,
    window: { rows: results.length, limit: QUALITY_WINDOW },
    versions: [...rules].map(([version, rule]) => ({
      version,
      task: rule.task,
      ...versionQuality(rule, byVersion.get(version) ?? []),
    })),
  };
}

/**
 * The labelled feedback texts of model `id` as dataset records for `spec` (oldest first, at most
 * `limit`): binary/multiclass put the true label in `label_field`; multilabel sets each of
 * `label_fields` to 1 when its label (`labels[k]`, else the field's name) is among the true ones.
 * Items without a stored text (images, or sync predictions logged without inputs and labelled
 * without `text`) cannot be trained on and are left out.
 */
export async function feedbackRecords(
  db: D1Database,
  id: string,
  spec: FieldSpec,
  limit: number,
): Promise<Record<string, unknown>[]> {
  if (limit <= 0) return [];
  const { results } = await db
    .prepare(
      "SELECT text, labels FROM feedback WHERE model_id = ? AND text IS NOT NULL ORDER BY log_seq LIMIT ?",
    )
    .bind(id, limit)
    .all<{ text: string; labels: string }>();
  return results.map((r) => {
    const labels = JSON.parse(r.labels) as string[];
    if (spec.task !== "multilabel")
      return { [spec.text_field]: r.text, [spec.label_field as string]: labels[0] };
    const fields = spec.label_fields ?? [];
    const names = spec.labels ?? fields;
    return {
      [spec.text_field]: r.text,
      ...Object.fromEntries(fields.map((f, k) => [f, labels.includes(names[k] as string) ? 1 : 0])),
    };
  });
}
