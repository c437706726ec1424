import type { Config } from "../config";
import type {
  ModelManifest,
  TensorModelManifest,
  TextInputManifest,
  TextModelManifest,
} from "../contracts/manifest";
import { ApiError } from "../errors";
import { featurize, padRows, type SparseFeatures } from "../featurizer/text";
import { getManifest, getModelBytes, onStaleVersion, resolveVersion } from "../storage/model-store";
import { type LinearGraph, type NetworkGraph, readExplainGraph } from "./explain";
import { openIsolatedSession, runsIsolated } from "./isolation";
import { createSession, ort } from "./ort";
import { type LoadedModel, type ModelSession, SessionCache } from "./session-cache";
import { signatureProblem } from "./signature";
import { fromOrtTensor, type OutputTensor, shapeFits, toOrtTensor, type WireTensor } from "./tensors";

let cache: SessionCache<ModelManifest> | undefined;

/** The settings the engine reads (the isolated BYOM Worker has only these). */
export type EngineConfig = Pick<Config, "MODEL_CACHE_BYTES" | "MAX_MODEL_BYTES" | "ACTIVE_POINTER_TTL_MS">;

/**
 * The isolate's session cache (created on first use with the configured byte budget). A version
 * that stops being current (switched away from, deleted, replaced) has its session dropped.
 */
export function sessionCache(config: Pick<Config, "MODEL_CACHE_BYTES">): SessionCache<ModelManifest> {
  if (!cache) {
    const created = new SessionCache<ModelManifest>(config.MODEL_CACHE_BYTES);
    onStaleVersion((id, version) => created.drop((key) => key.startsWith(`${id}/${version}@`)));
    cache = created;
  }
  return cache;
}

/**
 * Resolves `id`/`version` against R2, loads (or reuses) its session and runs `fn` with it.
 * Any load failure other than "not found" becomes a 503 `model_unavailable`; other models keep
 * serving.
 */
export async function withModel<T>(
  bucket: R2Bucket,
  config: EngineConfig,
  id: string,
  version: string | undefined,
  fn: (model: LoadedModel<ModelManifest>) => Promise<T>,
): Promise<T> {
  const resolved = await resolveVersion(bucket, id, version, config.ACTIVE_POINTER_TTL_MS);
  const manifest = await getManifest(bucket, id, resolved, config.ACTIVE_POINTER_TTL_MS);
  const load = async (): Promise<LoadedModel<ModelManifest>> => {
    if (runsIsolated(manifest)) {
      // An uploaded model: its bytes are loaded and run by the BYOM Worker (./isolation.ts); this
      // isolate holds a handle, counted as 0 bytes of its cache.
      const session = await openIsolatedSession({ id, version: resolved, sha256: manifest.sha256 });
      checkSignature(session, manifest);
      return { session, meta: manifest, sizeBytes: 0 };
    }
    const bytes = await getModelBytes(bucket, manifest, config.MAX_MODEL_BYTES);
    try {
      const session = await createSession(bytes, manifest.graph_optimization_level);
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

function checkSignature(session: ModelSession, manifest: ModelManifest): void {
  if (signatureProblem(session, manifest) !== undefined) {
    void session.release();
    throw new ApiError(
      "model_unavailable",
      `model '${manifest.id}' version '${manifest.version}' does not match its manifest's inputs/outputs`,
    );
  }
}

/**
 * Scores `texts` with a text model, one probability vector per text in the manifest's label order,
 * in one run for the whole batch. The kind picks the path: hashed n-grams are featurized with the
 * model's own featurizer spec; a `raw-text` graph receives the strings as they are. `onRows` sees
 * the featurized rows (hashed n-gram models only) before the run.
 */
export async function scoreTexts(
  model: LoadedModel<TextInputManifest>,
  texts: readonly string[],
  onRows?: (rows: readonly SparseFeatures[]) => void,
): Promise<Float32Array[]> {
  const { meta } = model;
  if (meta.kind === "raw-text") {
    const input = model.session.inputMetadata.find((m) => m.name === meta.inputs.text);
    const dims = input?.isTensor && input.shape.length === 1 ? [texts.length] : [texts.length, 1];
    return runScores(model, texts.length, { [meta.inputs.text]: new ort.Tensor("string", [...texts], dims) });
  }
  const rows = texts.map((t) => featurize(t, meta.featurizer));
  onRows?.(rows);
  return runRows(model as LoadedModel<TextModelManifest>, rows);
}

/**
 * Per loaded session: the weights its explanations read (a linear graph's or the embedding-bag
 * network's; `null`: neither → leave-one-out). The value is kept, not a promise: a promise made in
 * one request must not be awaited by another (workerd); concurrent first explanations of one
 * session each read the bytes once.
 */
const graphs = new WeakMap<object, LinearGraph | NetworkGraph | null>();

/**
 * The weights an explanation of a loaded model reads (./explain.ts), or `null`: read from the
 * model's verified bytes on its first explanation and kept as long as the session.
 */
export async function explainGraphOf(
  bucket: R2Bucket,
  config: Pick<Config, "MAX_MODEL_BYTES">,
  model: LoadedModel<TextModelManifest>,
): Promise<LinearGraph | NetworkGraph | null> {
  const known = graphs.get(model.session);
  if (known !== undefined) return known;
  const bytes = await getModelBytes(bucket, model.meta, config.MAX_MODEL_BYTES);
  const graph = readExplainGraph(bytes, model.meta);
  // A concurrent first explanation may have kept its own meanwhile: keep (and charge) one.
  const kept = graphs.get(model.session);
  if (kept !== undefined) return kept;
  graphs.set(model.session, graph);
  // The weights live as long as the session: the cache's byte budget counts them.
  if (cache && graph) cache.charge(model, heldBytes(graph));
  return graph;
}

/** Bytes of the typed arrays an explanation graph holds. */
function heldBytes(graph: LinearGraph | NetworkGraph): number {
  let bytes = 0;
  for (const value of Object.values(graph)) if (ArrayBuffer.isView(value)) bytes += value.byteLength;
  return bytes;
}

/** Runs a hashed n-gram text model once on featurized `rows` (explanations featurize themselves). */
export function scoreFeatureRows(
  model: LoadedModel<TextModelManifest>,
  rows: readonly SparseFeatures[],
): Promise<Float32Array[]> {
  return runRows(model, rows);
}

/** Runs the model once on `rows` (zero-padded to the widest). */
async function runRows(
  model: LoadedModel<TextModelManifest>,
  rows: readonly SparseFeatures[],
): Promise<Float32Array[]> {
  const { meta } = model;
  const batch = padRows(rows);
  return runScores(model, rows.length, {
    [meta.inputs.ids]: new ort.Tensor("int64", batch.ids, batch.dims),
    [meta.inputs.values]: new ort.Tensor("float32", batch.values, batch.dims),
  });
}

/** Runs `feeds` and splits the `[rows, labels]` scores output into one vector per row. */
async function runScores(
  model: LoadedModel<TextInputManifest>,
  rows: number,
  feeds: Record<string, ort.Tensor>,
): Promise<Float32Array[]> {
  const { meta, session } = model;
  const outputs = await session.run(feeds);
  try {
    const scores = outputs[meta.output];
    const k = meta.labels.length;
    if (!scores || !(scores.data instanceof Float32Array) || scores.data.length !== rows * k) {
      throw new ApiError("model_unavailable", `model '${meta.id}' returned an output of unexpected shape`);
    }
    const data = scores.data;
    return Array.from({ length: rows }, (_, row) => data.slice(row * k, (row + 1) * k));
  } finally {
    for (const tensor of Object.values(outputs)) tensor.dispose();
  }
}

/**
 * Runs a `tensor` model on protocol tensors: every declared input, each checked against its declared
 * datatype and shape (400 `invalid_request` otherwise); returns every declared output.
 */
export async function runTensors(
  model: LoadedModel<TensorModelManifest>,
  inputs: readonly WireTensor[],
): Promise<OutputTensor[]> {
  const { meta, session } = model;
  const names = meta.inputs.map((t) => t.name);
  const given = inputs.map((t) => t.name);
  if (given.length !== names.length || !names.every((n) => given.includes(n))) {
    throw new ApiError(
      "invalid_request",
      `model '${meta.id}' takes inputs ${names.map((n) => `'${n}'`).join(", ")}; got ${given.map((n) => `'${n}'`).join(", ")}`,
    );
  }
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of meta.inputs) {
    const input = inputs.find((t) => t.name === spec.name) as WireTensor;
    if (input.datatype !== spec.datatype || !shapeFits(spec.shape, input.shape)) {
      throw new ApiError(
        "invalid_request",
        `input '${spec.name}' must be ${spec.datatype} [${spec.shape.join(", ")}] (-1: any size); got ${input.datatype} [${input.shape.join(", ")}]`,
      );
    }
    feeds[spec.name] = toOrtTensor(input);
  }
  const outputs = await session.run(feeds);
  try {
    return meta.outputs.map((spec) => {
      const tensor = outputs[spec.name];
      if (!tensor)
        throw new ApiError("model_unavailable", `model '${meta.id}' did not return '${spec.name}'`);
      // An output must have its declared shape (-1: any size) before it is copied into an answer.
      if (!shapeFits(spec.shape, tensor.dims)) {
        throw new ApiError(
          "model_unavailable",
          `model '${meta.id}' returned '${spec.name}' of shape [${tensor.dims.join(", ")}]; its manifest declares [${spec.shape.join(", ")}]`,
        );
      }
      return fromOrtTensor(spec.name, tensor);
    });
  } finally {
    for (const tensor of Object.values(outputs)) tensor.dispose();
  }
}
