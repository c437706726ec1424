/**
 * Validation of a model upload before anything is stored: manifest schema, size limit, sha256,
 * ONNX session creation and a probe inference through the manifest's declared inputs and output.
 * Every failure is a 422 `invalid_model` naming the problem.
 */
import { ApiError } from "../errors";
import { featurizeBatch } from "../featurizer/text";
import { sha256Hex } from "../hash";
import {
  imageInputDims,
  imageManifestSchema,
  type ModelManifest,
  textManifestSchema,
} from "../inference/manifest";
import { createSession, ort } from "../inference/ort";

/** Texts of the probe run of a text model (a batch of two, one of them empty after featurizing). */
const PROBE_TEXTS = ["edge-inference probe: is this model usable?", "!"];
/** Images of the probe run of an image model (all-zero inputs). */
const PROBE_IMAGES = 2;
/** Slack on "a probability is within [0, 1]" and "softmax rows sum to 1" (float32 arithmetic). */
const PROBABILITY_SLACK = 1e-3;

function invalid(detail: string, extensions: Record<string, unknown> = {}, cause?: unknown): ApiError {
  return new ApiError("invalid_model", detail, { extensions, ...(cause === undefined ? {} : { cause }) });
}

/** Validates `raw` with the manifest schema of its `kind` (text unless "image"); 422 listing each problem. */
export function parseManifest(raw: unknown): ModelManifest {
  const image = (raw as { kind?: unknown } | null)?.kind === "image";
  const parsed = (image ? imageManifestSchema : textManifestSchema).safeParse(raw);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((i) => ({
    path: i.path.join(".") || "(manifest)",
    message: i.message,
  }));
  throw invalid(`manifest is invalid: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`, {
    errors,
  });
}

/**
 * Checks that `bytes` are the model `manifest` describes and that it runs: size within `maxBytes`
 * and equal to `size_bytes`, sha256 equal to `sha256`, an ORT session can be created, it has the
 * manifest's input and output names, and a probe batch yields `[batch, labels]` finite
 * probabilities (rows summing to 1 for multiclass). The probe session is released afterwards.
 */
export async function validateModel(
  manifest: ModelManifest,
  bytes: Uint8Array,
  maxBytes: number,
): Promise<void> {
  const limits = { limit_bytes: maxBytes };
  if (bytes.byteLength === 0) throw invalid("model bytes are empty");
  if (bytes.byteLength > maxBytes) {
    throw invalid(`model is ${bytes.byteLength} bytes; the limit is ${maxBytes}`, limits);
  }
  if (bytes.byteLength !== manifest.size_bytes) {
    throw invalid(
      `model is ${bytes.byteLength} bytes but the manifest says size_bytes ${manifest.size_bytes}`,
    );
  }
  const sha256 = await sha256Hex(bytes);
  if (sha256 !== manifest.sha256) {
    throw invalid(`sha256 of the model bytes is ${sha256}, the manifest says ${manifest.sha256}`);
  }
  let session: ort.InferenceSession;
  try {
    session = await createSession(bytes);
  } catch (cause) {
    throw invalid(`the bytes are not a loadable ONNX model: ${errorText(cause)}`, {}, cause);
  }
  try {
    await probe(session, manifest);
  } finally {
    await session.release();
  }
}

async function probe(session: ort.InferenceSession, manifest: ModelManifest): Promise<void> {
  const wanted =
    manifest.kind === "image" ? [manifest.inputs.image] : [manifest.inputs.ids, manifest.inputs.values];
  const missing = wanted.filter((name) => !session.inputNames.includes(name));
  const extra = session.inputNames.filter((name) => !wanted.includes(name));
  if (missing.length > 0 || extra.length > 0 || !session.outputNames.includes(manifest.output)) {
    throw invalid(
      `graph inputs [${session.inputNames.join(", ")}] / outputs [${session.outputNames.join(", ")}] do not match ` +
        `the manifest's inputs [${wanted.join(", ")}] / output ${manifest.output}`,
    );
  }
  let feeds: Record<string, ort.Tensor>;
  let rows: number;
  if (manifest.kind === "image") {
    const { channels, height, width } = manifest.preprocess;
    rows = PROBE_IMAGES;
    const dims = imageInputDims(manifest.preprocess, rows);
    feeds = {
      [manifest.inputs.image]: new ort.Tensor(
        "float32",
        new Float32Array(rows * channels * height * width),
        dims,
      ),
    };
  } else {
    rows = PROBE_TEXTS.length;
    const batch = featurizeBatch(PROBE_TEXTS, manifest.featurizer);
    feeds = {
      [manifest.inputs.ids]: new ort.Tensor("int64", batch.ids, batch.dims),
      [manifest.inputs.values]: new ort.Tensor("float32", batch.values, batch.dims),
    };
  }
  let outputs: ort.InferenceSession.ReturnType;
  try {
    outputs = await session.run(feeds);
  } catch (cause) {
    throw invalid(`the probe inference failed: ${errorText(cause)}`, {}, cause);
  }
  try {
    checkScores(outputs[manifest.output], rows, manifest);
  } finally {
    for (const tensor of Object.values(outputs)) tensor.dispose();
  }
}

function checkScores(scores: ort.Tensor | undefined, rows: number, manifest: ModelManifest): void {
  const k = manifest.labels.length;
  if (scores?.type !== "float32" || !(scores.data instanceof Float32Array)) {
    throw invalid(`output '${manifest.output}' is not a float32 tensor`);
  }
  if (scores.dims.length !== 2 || scores.dims[0] !== rows || scores.dims[1] !== k) {
    throw invalid(
      `output '${manifest.output}' has shape [${scores.dims.join(", ")}] for a batch of ${rows}; ` +
        `expected [${rows}, ${k}] (one score per label)`,
    );
  }
  const data = scores.data;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (!Number.isFinite(v) || v < -PROBABILITY_SLACK || v > 1 + PROBABILITY_SLACK) {
      throw invalid(`output '${manifest.output}' holds ${v}, not a probability in [0, 1]`);
    }
  }
  if (manifest.task !== "multiclass") return;
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = 0; j < k; j++) sum += data[r * k + j] as number;
    if (Math.abs(sum - 1) > PROBABILITY_SLACK) {
      throw invalid(`a multiclass model's scores must sum to 1 per row; row ${r} sums to ${sum}`);
    }
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}
