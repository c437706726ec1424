/**
 * D1 access of the model registry (`migrations/0001_registry.sql`): models and their versions.
 * Every D1 failure becomes a 503 `registry_unavailable`; callers never see driver errors.
 */

import { d1 } from "../contracts/d1";
import type { ActivePointer, ModelManifest } from "../contracts/manifest";
import { DEFAULT_OPTIMIZATION_LEVEL, type OptimizationLevel } from "../contracts/manifest";
import type { Shadow, Split } from "../contracts/rollout";
import { kindName } from "../inference/kinds";

/** Where a version came from. */
export type VersionSource = "upload" | "training" | "import";

/** A `models` row. */
export interface ModelRow {
  id: string;
  active_version: string | null;
  /** The traffic split (JSON) and shadow versions (JSON) the active pointer holds (docs/rollout.md). */
  split: string | null;
  shadows: string | null;
  created_at: number;
  updated_at: number;
}

/** A `model_versions` row. */
export interface VersionRow {
  model_id: string;
  version: string;
  state: "pending" | "ready";
  source: VersionSource;
  task: string;
  labels: string;
  metrics: string;
  sha256: string;
  size_bytes: number;
  manifest: string;
  created_at: number;
}

/** The `models` row of `id`, or null. */
export function getModelRow(db: D1Database, id: string): Promise<ModelRow | null> {
  return d1("read model", () => db.prepare("SELECT * FROM models WHERE id = ?").bind(id).first<ModelRow>());
}

/** Every version row of `id` (pending ones included), oldest first. */
export async function getVersionRows(db: D1Database, id: string): Promise<VersionRow[]> {
  const { results } = await d1("read versions", () =>
    db
      .prepare("SELECT * FROM model_versions WHERE model_id = ? ORDER BY created_at, version")
      .bind(id)
      .all<VersionRow>(),
  );
  return results;
}

/** One version row, or null. */
export function getVersionRow(db: D1Database, id: string, version: string): Promise<VersionRow | null> {
  return d1("read version", () =>
    db
      .prepare("SELECT * FROM model_versions WHERE model_id = ? AND version = ?")
      .bind(id, version)
      .first<VersionRow>(),
  );
}

/**
 * Statements that create the model row if needed and insert a version row in `state` (with
 * `ignoreExisting`, an existing version row is left as it is instead of failing the batch).
 */
export function insertVersionStatements(
  db: D1Database,
  manifest: ModelManifest,
  state: VersionRow["state"],
  source: VersionSource,
  now: number,
  ignoreExisting = false,
): D1PreparedStatement[] {
  return [
    db
      .prepare(
        "INSERT OR IGNORE INTO models (id, active_version, created_at, updated_at) VALUES (?, NULL, ?, ?)",
      )
      .bind(manifest.id, now, now),
    db
      .prepare(
        `INSERT ${ignoreExisting ? "OR IGNORE " : ""}INTO model_versions
           (model_id, version, state, source, task, labels, metrics, sha256, size_bytes, manifest, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        manifest.id,
        manifest.version,
        state,
        source,
        manifest.task,
        JSON.stringify(manifest.labels),
        JSON.stringify(manifest.metrics),
        manifest.sha256,
        manifest.size_bytes,
        JSON.stringify(manifest),
        now,
      ),
  ];
}

/** A version as the registry API shows it. */
export interface VersionView {
  version: string;
  state: VersionRow["state"];
  source: VersionSource;
  kind: NonNullable<ModelManifest["kind"]>;
  task: string;
  labels: string[];
  metrics: Record<string, number>;
  sha256: string;
  size_bytes: number;
  created_at: string;
  description?: string;
  /** ORT graph optimization level the version runs at (src/inference/optimization.ts). */
  graph_optimization_level: OptimizationLevel;
  /** Why higher levels are not used (their disagreement with optimizations disabled), if any. */
  optimization_disagreements?: NonNullable<ModelManifest["optimization_disagreements"]>;
  /** Per-label decision thresholds the manifest declares (what `flagged` compares against). */
  thresholds?: Record<string, number>;
}

/** Renders a version row for the API. */
export function versionView(row: VersionRow): VersionView {
  const manifest = JSON.parse(row.manifest) as ModelManifest;
  return {
    version: row.version,
    state: row.state,
    source: row.source,
    kind: kindName(manifest),
    task: row.task,
    labels: JSON.parse(row.labels) as string[],
    metrics: JSON.parse(row.metrics) as Record<string, number>,
    sha256: row.sha256,
    size_bytes: row.size_bytes,
    created_at: new Date(row.created_at).toISOString(),
    ...(manifest.description === undefined ? {} : { description: manifest.description }),
    graph_optimization_level: manifest.graph_optimization_level ?? DEFAULT_OPTIMIZATION_LEVEL,
    ...(manifest.optimization_disagreements && {
      optimization_disagreements: manifest.optimization_disagreements,
    }),
    ...("thresholds" in manifest && manifest.thresholds !== undefined
      ? { thresholds: manifest.thresholds }
      : {}),
  };
}

/** D1's mirror of a pointer's split and shadows. */
export function rolloutColumns(pointer: ActivePointer): { split: string | null; shadows: string | null } {
  return {
    split: pointer.split === undefined ? null : JSON.stringify(pointer.split),
    shadows: pointer.shadows === undefined ? null : JSON.stringify(pointer.shadows),
  };
}

/** A `models` row's split and shadows (D1's mirror of the pointer). */
export function rolloutOfRow(row: { split?: string | null; shadows?: string | null }): {
  split: Split | null;
  shadows: Shadow[];
} {
  return {
    split: row.split ? (JSON.parse(row.split) as Split) : null,
    shadows: row.shadows ? (JSON.parse(row.shadows) as Shadow[]) : [],
  };
}
