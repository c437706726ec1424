/**
 * Publishing a model version: the one way a new version enters the registry (the upload route,
 * training jobs, and online-learning snapshots all call `publishModelVersion`).
 */
import { loadConfig } from "../config";
import { d1 } from "../contracts/d1";
import type { ModelManifest, OptimizationLevel } from "../contracts/manifest";
import { r2Keys } from "../contracts/r2-keys";
import { ApiError } from "../errors";
import { runsIsolated, validateIsolated } from "../inference/isolation";
import { activateVersion } from "./activate";
import { getVersionRow, insertVersionStatements, type VersionSource } from "./db";
import { checkWorkBounds } from "./graph-bounds";
import { ensureModelImported } from "./import";
import { parseManifest, type SessionMemory, validateModel } from "./validate";

/** A `pending` reservation older than this is taken to be from a publish that died. */
const PENDING_TIMEOUT_MS = 10 * 60_000;

/** What `publishModelVersion` publishes. */
export interface PublishInput {
  /** The version's manifest; `sha256` and `size_bytes` must describe `bytes`. */
  manifest: ModelManifest;
  /** The ONNX model bytes. */
  bytes: Uint8Array;
  /** Make it the active version once stored. */
  activate: boolean;
  /** Recorded on the version row; default `upload`. */
  source?: Exclude<VersionSource, "import">;
}

/**
 * Validates and stores a model version, then activates it when asked.
 *
 * 1. Validation, before anything is written: manifest schema; size ≤ `MAX_MODEL_BYTES` and equal
 *    to `size_bytes`; sha256; data-dependent work within the manifest's `work_bounds`
 *    (./graph-bounds.ts); ORT session creation; a probe inference through the manifest's
 *    inputs/output giving `[batch, labels]` probabilities. Failure: 422 `invalid_model`. The probe's
 *    outputs with graph optimizations disabled and at the Worker's level are compared: the manifest
 *    stored records the highest level that agrees (`graph_optimization_level`).
 * 2. The version is reserved in D1 (`pending`), the bytes and manifest are written to R2 at
 *    `models/<id>/<version>/`, and the row becomes `ready`. A failure on the way removes the
 *    reservation and what was written, and rethrows.
 * 3. With `activate`, `activateVersion` switches serving to it.
 *
 * Versions are immutable: publishing an existing version again with the same sha256 is a no-op
 * (then step 3), which makes retried jobs idempotent; with other bytes it is a 409
 * `model_version_exists`. Nothing is active or listed as ready unless fully written.
 */
export async function publishModelVersion(env: Env, input: PublishInput): Promise<PublishResult> {
  const config = loadConfig(env as unknown as Record<string, unknown>);
  // `source` is the registry's, never the manifest's: it decides where the model runs (uploads in the
  // isolated BYOM Worker, src/inference/isolation.ts), so a given one is overwritten.
  let manifest = parseManifest({ ...input.manifest, source: input.source ?? "upload" });
  const { id, version } = manifest;
  await ensureModelImported(env, id);
  const existing = await getVersionRow(env.DB, id, version);
  if (existing?.state === "ready" && existing.sha256 === manifest.sha256) {
    if (input.activate) await activateVersion(env, config, id, version);
    return {};
  }
  if (existing && (existing.state === "ready" || Date.now() - existing.created_at < PENDING_TIMEOUT_MS)) {
    throw new ApiError(
      "model_version_exists",
      existing.state === "ready"
        ? `model '${id}' already has a version '${version}' (versions are immutable; publish a new one)`
        : `model '${id}' version '${version}' is being published by another request`,
    );
  }
  // Data-dependent allocation and iteration must be bounded before ORT ever loads the graph.
  checkWorkBounds(input.bytes, manifest);
  // Validation loads and probes the graph where it will run: an upload's in the BYOM Worker.
  const { memory, optimization } = runsIsolated(manifest)
    ? await validateIsolated(manifest, input.bytes, {
        max_model_bytes: config.MAX_MODEL_BYTES,
        max_heap_bytes: config.MAX_WASM_HEAP_BYTES,
      })
    : await validateModel(manifest, input.bytes, config.MAX_MODEL_BYTES, config.MAX_WASM_HEAP_BYTES);
  // The level the outputs agree at is what serving uses (recorded in R2's manifest and D1's copy).
  manifest = {
    ...manifest,
    graph_optimization_level: optimization.level,
    optimization_disagreements:
      optimization.disagreements.length > 0 ? optimization.disagreements : undefined,
  };

  const now = Date.now();
  await d1("reserve version", async () => {
    const statements = insertVersionStatements(env.DB, manifest, "pending", input.source ?? "upload", now);
    // A stale reservation is replaced in the same transaction.
    if (existing) {
      statements.unshift(
        env.DB.prepare(
          "DELETE FROM model_versions WHERE model_id = ? AND version = ? AND state = 'pending'",
        ).bind(id, version),
      );
    }
    try {
      await env.DB.batch(statements);
    } catch (cause) {
      if (!String(cause).includes("UNIQUE")) throw cause;
      throw new ApiError(
        "model_version_exists",
        `model '${id}' version '${version}' was published concurrently`,
      );
    }
  });
  try {
    await env.MODELS.put(r2Keys.model(id, version), input.bytes, {
      sha256: manifest.sha256,
      httpMetadata: { contentType: "application/octet-stream" },
    });
    await env.MODELS.put(r2Keys.manifest(id, version), JSON.stringify(manifest, null, 2), {
      httpMetadata: { contentType: "application/json" },
    });
    await d1("mark version ready", () =>
      env.DB.prepare("UPDATE model_versions SET state = 'ready' WHERE model_id = ? AND version = ?")
        .bind(id, version)
        .run(),
    );
  } catch (error) {
    await abandon(env, id, version);
    if (error instanceof ApiError) throw error;
    throw new ApiError("registry_unavailable", `storing model '${id}' version '${version}' failed; retry`, {
      cause: error,
      headers: { "retry-after": "1" },
    });
  }
  if (input.activate) await activateVersion(env, config, id, version);
  return { memory, graph_optimization_level: optimization.level };
}

/** What a publish measured: the WASM heap after validating (absent when the version already existed). */
export interface PublishResult {
  memory?: SessionMemory;
  /** The ORT graph optimization level the version runs at (absent when it already existed). */
  graph_optimization_level?: OptimizationLevel;
}

/** Best-effort removal of a failed publish: R2 objects, the reservation, an empty model row. */
async function abandon(env: Env, id: string, version: string): Promise<void> {
  await env.MODELS.delete([r2Keys.manifest(id, version), r2Keys.model(id, version)]).catch(() => undefined);
  await env.DB.batch([
    env.DB.prepare(
      "DELETE FROM model_versions WHERE model_id = ? AND version = ? AND state = 'pending'",
    ).bind(id, version),
    env.DB.prepare(
      "DELETE FROM models WHERE id = ? AND active_version IS NULL AND NOT EXISTS (SELECT 1 FROM model_versions WHERE model_id = ?)",
    ).bind(id, id),
  ]).catch(() => undefined);
}
