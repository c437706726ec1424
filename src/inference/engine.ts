import { Coalescer } from "../coalesce";
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

/** Concurrent requests' texts on one model run together, up to this many texts per ORT run. */
const MAX_DYNAMIC_BATCH = 64;
/** Rows wider than this (very long texts) run alone rather than padding a whole batch to their width. */
const MAX_SHARED_WIDTH = 4096;
/** An ORT run that takes longer than this fails its requests (503) instead of hanging them. */
const RUN_TIMEOUT_MS = 30_000;

interface RunItem {
  model: LoadedModel<TextModelManifest>;
  rows: SparseFeatures[];
}

/**
 * Dynamic batching (as in Triton's dynamic batcher, with a queue delay of one event-loop turn):
 * requests for the same model session that reach the model while a run is being gathered share one
 * ORT run. A run costs far more per call than per text (about 0.07 ms vs 0.013 ms per text in
 * `npm run bench`'s model time), so this is what keeps single-text requests cheap under load.
 */
const runs = new Coalescer<RunItem, Float32Array[]>(
  async (_key, items) => {
    const first = items[0];
    if (!first) return [];
    const scores = await runRows(first.model, items.length === 1 ? first.rows : items.flatMap((i) => i.rows));
    let offset = 0;
    return items.map((item) => {
      offset += item.rows.length;
      return scores.slice(offset - item.rows.length, offset);
    });
  },
  MAX_DYNAMIC_BATCH,
  (item) => item.rows.length,
  // One macrotask turn, so requests already received reach the model and join the batch.
  () => new Promise((resolve) => setTimeout(resolve, 0)),
);

const sessionIds = new WeakMap<object, number>();
let nextSessionId = 0;

/** A batching key per session and width class (widths within 2× of each other share batches). */
function runKey(model: LoadedModel<ModelManifest>, rows: readonly SparseFeatures[]): string {
  let id = sessionIds.get(model.session);
  if (id === undefined) {
    id = nextSessionId++;
    sessionIds.set(model.session, id);
  }
  const width = Math.max(1, ...rows.map((r) => r.ids.length));
  return `${id}:${Math.ceil(Math.log2(width))}`;
}

/**
 * Featurizes `texts` with the model's own featurizer spec and scores them, in one ORT run shared
 * with concurrent requests on the same model (dynamic batching). Returns one probability vector
 * per text, in the manifest's label order.
 */
export async function scoreTexts(
  model: LoadedModel<TextModelManifest>,
  texts: readonly string[],
): Promise<Float32Array[]> {
  const rows = texts.map((t) => featurize(t, model.meta.featurizer));
  if (rows.some((r) => r.ids.length > MAX_SHARED_WIDTH)) return runRows(model, rows);
  return runs.submit(runKey(model, rows), { model, rows }, RUN_TIMEOUT_MS);
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
