import type { Config } from "../config";
import { ApiError } from "../errors";
import { featurize, padRows, type SparseFeatures } from "../featurizer/text";
import { getManifest, getModelBytes, onStaleVersion, resolveVersion } from "../storage/models";
import type { ModelManifest, TextModelManifest } from "./manifest";
import { createSession, ort } from "./ort";
import { type LoadedModel, SessionCache } from "./session-cache";

let cache: SessionCache<ModelManifest> | undefined;

/**
 * The isolate's session cache (created on first use with the configured byte budget). A version
 * that stops being current (switched away from, deleted, replaced) has its session dropped.
 */
export function sessionCache(config: Config): SessionCache<ModelManifest> {
  if (!cache) {
    const created = new SessionCache<ModelManifest>(config.MODEL_CACHE_BYTES);
    onStaleVersion((id, version) => created.drop((key) => key.startsWith(`${id}/${version}@`)));
    cache = created;
  }
  return cache;
}

/** Which model version a request resolved to. */
export interface ModelRef {
  id: string;
  version: string;
}

/**
 * Resolves `id`/`version` against R2, loads (or reuses) its session and runs `fn` with it.
 * Any load failure other than "not found" becomes a 503 `model_unavailable`; other models keep
 * serving.
 */
export async function withModel<T>(
  bucket: R2Bucket,
  config: Config,
  id: string,
  version: string | undefined,
  fn: (model: LoadedModel<ModelManifest>) => Promise<T>,
): Promise<T> {
  const resolved = await resolveVersion(bucket, id, version, config.ACTIVE_POINTER_TTL_MS);
  const manifest = await getManifest(bucket, id, resolved, config.ACTIVE_POINTER_TTL_MS);
  const load = async (): Promise<LoadedModel<ModelManifest>> => {
    const bytes = await getModelBytes(bucket, manifest, config.MAX_MODEL_BYTES);
    try {
      const session = await createSession(bytes);
      checkSignature(session, manifest);
      return { session, meta: manifest, sizeBytes: bytes.byteLength };
    } catch (cause) {
      if (cause instanceof ApiError) throw cause;
      throw new ApiError("model_unavailable", `model '${id}' version '${resolved}' could not be loaded`, {
        cause,
      });
    }
  };
  // Keyed by id + sha256 (what was verified) and version: a failed load of one version (e.g. corrupt
  // bytes) is negative-cached without blocking another version that declares the same sha256.
  return sessionCache(config).use(`${id}/${resolved}@${manifest.sha256}`, load, fn);
}

function checkSignature(session: ort.InferenceSession, manifest: ModelManifest): void {
  const inputs =
    manifest.kind === "image" ? [manifest.inputs.image] : [manifest.inputs.ids, manifest.inputs.values];
  if (
    !inputs.every((name) => session.inputNames.includes(name)) ||
    !session.outputNames.includes(manifest.output)
  ) {
    void session.release();
    throw new ApiError(
      "model_unavailable",
      `model '${manifest.id}' version '${manifest.version}' does not match its manifest's inputs/outputs`,
    );
  }
}

/**
 * Featurizes `texts` with the model's own featurizer spec and runs the model once for the whole
 * batch. Returns one probability vector per text, in the manifest's label order.
 */
export async function scoreTexts(
  model: LoadedModel<TextModelManifest>,
  texts: readonly string[],
): Promise<Float32Array[]> {
  return runRows(
    model,
    texts.map((t) => featurize(t, model.meta.featurizer)),
  );
}

/** Runs the model once on `rows` (zero-padded to the widest). */
async function runRows(
  model: LoadedModel<TextModelManifest>,
  rows: readonly SparseFeatures[],
): Promise<Float32Array[]> {
  const { meta, session } = model;
  const batch = padRows(rows);
  const feeds = {
    [meta.inputs.ids]: new ort.Tensor("int64", batch.ids, batch.dims),
    [meta.inputs.values]: new ort.Tensor("float32", batch.values, batch.dims),
  };
  const outputs = await session.run(feeds);
  const scores = outputs[meta.output];
  const k = meta.labels.length;
  if (!scores || !(scores.data instanceof Float32Array) || scores.data.length !== rows.length * k) {
    throw new ApiError("model_unavailable", `model '${meta.id}' returned an output of unexpected shape`);
  }
  const data = scores.data;
  const result = rows.map((_, row) => data.slice(row * k, (row + 1) * k));
  for (const tensor of Object.values(outputs)) tensor.dispose();
  return result;
}
