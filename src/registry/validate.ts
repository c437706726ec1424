/**
 * Validation of a model upload before anything is stored: manifest schema, size limit, sha256,
 * ONNX session creation (an operator the runtime lacks is named), the graph's signature against the
 * manifest's (`src/inference/signature.ts`) and a probe inference per kind. Every failure is a 422
 * `invalid_model` naming the problem, except a model that would not fit an isolate's memory (413
 * `model_too_large`).
 */

import {
  imageInputDims,
  imageManifestSchema,
  type ModelManifest,
  rawTextManifestSchema,
  type TensorModelManifest,
  tensorManifestSchema,
  textManifestSchema,
} from "../contracts/manifest";
import { ApiError } from "../errors";
import { featurizeBatch } from "../featurizer/text";
import { sha256Hex } from "../hash";
import { createSession, ort, wasmHeapBytes } from "../inference/ort";
import { signatureProblem } from "../inference/signature";
import { datatypeOf, exampleInputs, shapeFits, toOrtTensor, type WireTensor } from "../inference/tensors";

/** Texts of the probe run of a text model (a batch of two, one of them empty after featurizing). */
const PROBE_TEXTS = ["edge-inference probe: is this model usable?", "!"];
/** Images of the probe run of an image model (all-zero inputs). */
const PROBE_IMAGES = 2;
/** Slack on "a probability is within [0, 1]" and "softmax rows sum to 1" (float32 arithmetic). */
const PROBABILITY_SLACK = 1e-3;

function invalid(detail: string, extensions: Record<string, unknown> = {}, cause?: unknown): ApiError {
  return new ApiError("invalid_model", detail, { extensions, ...(cause === undefined ? {} : { cause }) });
}

/** The manifest schema of each `kind`; `hashed-ngrams` is the hashed n-gram text kind, stored as "text". */
const SCHEMAS = {
  image: imageManifestSchema,
  "raw-text": rawTextManifestSchema,
  tensor: tensorManifestSchema,
} as const;

/**
 * Validates `raw` with the manifest schema of its `kind` (hashed n-gram text unless "image",
 * "raw-text" or "tensor"); 422 listing each problem.
 */
export function parseManifest(raw: unknown): ModelManifest {
  let kind = (raw as { kind?: unknown } | null)?.kind;
  if (kind === "hashed-ngrams") {
    raw = { ...(raw as object), kind: "text" };
    kind = "text";
  }
  const schema =
    typeof kind === "string" && Object.hasOwn(SCHEMAS, kind)
      ? SCHEMAS[kind as keyof typeof SCHEMAS]
      : textManifestSchema;
  const parsed = schema.safeParse(raw);
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
 * manifest's signature, and a probe batch (the manifest's examples, if any) yields `[batch, labels]`
 * finite probabilities (rows summing to 1 for multiclass) — for a `tensor` model every declared
 * output with its declared datatype and shape. The probe session is released afterwards; the WASM
 * heap must not have grown past `maxHeapBytes` (413 `model_too_large`). Returns the heap figures.
 */
export async function validateModel(
  manifest: ModelManifest,
  bytes: Uint8Array,
  maxBytes: number,
  maxHeapBytes = Number.POSITIVE_INFINITY,
): Promise<SessionMemory> {
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
  const heapBefore = wasmHeapBytes();
  let session: ort.InferenceSession;
  try {
    session = await createSession(bytes);
  } catch (cause) {
    if (/bad_alloc|out of memory|\bOOM\b/i.test(errorText(cause))) throw tooLarge(maxHeapBytes, cause);
    const operator = unsupportedOperator(errorText(cause));
    throw invalid(
      operator
        ? `operator ${operator} is not supported by the Worker's ONNX runtime (onnxruntime-web ${ort.env.versions.web ?? ""}, WASM): ${errorText(cause)}`
        : `the bytes are not a loadable ONNX model: ${errorText(cause)}`,
      operator ? { operator } : {},
      cause,
    );
  }
  try {
    await probe(session, manifest);
  } finally {
    await session.release();
  }
  const heap = wasmHeapBytes() ?? 0;
  const grown = heap - (heapBefore ?? 0);
  // Only a model that made the heap grow past the budget is refused: a heap already that large
  // (other sessions cached in this isolate) says nothing about this model.
  if (grown > 0 && heap > maxHeapBytes) throw tooLarge(maxHeapBytes, undefined, heap);
  return { wasm_heap_bytes: heap, session_memory_bytes: grown };
}

/**
 * ORT's WebAssembly heap around an upload's validation: its size afterwards and how much loading
 * and probing this model grew it (0 when the isolate already had room).
 */
export interface SessionMemory {
  wasm_heap_bytes: number;
  session_memory_bytes: number;
}

function tooLarge(maxHeapBytes: number, cause?: unknown, heap?: number): ApiError {
  return new ApiError(
    "model_too_large",
    heap === undefined
      ? "the model does not fit in the isolate's memory: ORT ran out of memory while loading it"
      : `loading and running the model grew the isolate's WASM heap to ${heap} bytes; the limit is ${maxHeapBytes} (MAX_WASM_HEAP_BYTES)`,
    {
      extensions: { limit_bytes: maxHeapBytes, ...(heap === undefined ? {} : { wasm_heap_bytes: heap }) },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

async function probe(session: ort.InferenceSession, manifest: ModelManifest): Promise<void> {
  const problem = signatureProblem(session, manifest);
  if (problem !== undefined) throw invalid(problem);
  if (manifest.kind === "tensor") {
    for (const inputs of exampleInputs(manifest)) await probeTensors(session, manifest, inputs);
    return;
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
  } else if (manifest.kind === "raw-text") {
    const texts = manifest.examples ?? PROBE_TEXTS;
    rows = texts.length;
    const input = session.inputMetadata.find((m) => m.name === manifest.inputs.text);
    const dims = input?.isTensor && input.shape.length === 1 ? [rows] : [rows, 1];
    feeds = { [manifest.inputs.text]: new ort.Tensor("string", [...texts], dims) };
  } else {
    rows = PROBE_TEXTS.length;
    const batch = featurizeBatch(PROBE_TEXTS, manifest.featurizer);
    feeds = {
      [manifest.inputs.ids]: new ort.Tensor("int64", batch.ids, batch.dims),
      [manifest.inputs.values]: new ort.Tensor("float32", batch.values, batch.dims),
    };
  }
  await runProbe(session, feeds, (outputs) => {
    checkScores(outputs[manifest.output], rows, manifest);
    if (manifest.kind === "raw-text" && manifest.label_output) {
      const labels = outputs[manifest.label_output];
      if (labels?.dims.length !== 1 || labels.dims[0] !== rows) {
        throw invalid(
          `label output '${manifest.label_output}' has shape [${labels?.dims.join(", ") ?? ""}] for a batch of ${rows}; expected [${rows}]`,
        );
      }
    }
  });
}

/** Runs `feeds` through the session and hands the outputs to `check`; they are disposed either way. */
async function runProbe(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  check: (outputs: ort.InferenceSession.ReturnType) => void,
): Promise<void> {
  let outputs: ort.InferenceSession.ReturnType;
  try {
    outputs = await session.run(feeds);
  } catch (cause) {
    throw invalid(`the probe inference failed: ${errorText(cause)}`, {}, cause);
  }
  try {
    check(outputs);
  } finally {
    for (const tensor of Object.values(outputs)) tensor.dispose();
  }
}

/** Runs one example of a `tensor` model and checks every declared output's datatype and shape. */
async function probeTensors(
  session: ort.InferenceSession,
  manifest: TensorModelManifest,
  inputs: readonly WireTensor[],
): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of manifest.inputs) {
    const input = inputs.find((t) => t.name === spec.name);
    if (!input) throw invalid(`an example lacks input '${spec.name}'`);
    if (!shapeFits(spec.shape, input.shape)) {
      throw invalid(
        `example input '${spec.name}' has shape [${input.shape.join(", ")}]; declared [${spec.shape.join(", ")}]`,
      );
    }
    try {
      feeds[spec.name] = toOrtTensor(input);
    } catch (error) {
      throw invalid(`example ${errorText(error)}`);
    }
  }
  await runProbe(session, feeds, (outputs) => {
    for (const spec of manifest.outputs) {
      const tensor = outputs[spec.name];
      if (!tensor || datatypeOf(tensor.type) !== spec.datatype || !shapeFits(spec.shape, tensor.dims)) {
        throw invalid(
          `output '${spec.name}' is ${tensor ? `${tensor.type} [${tensor.dims.join(", ")}]` : "missing"} on an example; declared ${spec.datatype} [${spec.shape.join(", ")}]`,
        );
      }
      const data = tensor.data;
      if ((data instanceof Float32Array || data instanceof Float64Array) && !data.every(Number.isFinite)) {
        throw invalid(`output '${spec.name}' holds non-finite values on an example`);
      }
    }
  });
}

function checkScores(
  scores: ort.Tensor | undefined,
  rows: number,
  manifest: Exclude<ModelManifest, TensorModelManifest>,
): void {
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

/**
 * The operator ORT names when it has no kernel for a node ("domain:Op(version) is not a registered
 * function/op", "Could not find an implementation for Op(version) node"), if any.
 */
function unsupportedOperator(message: string): string | undefined {
  const match =
    /([\w.]*:?\w+)\(-?\d+\) is not a registered function\/op/.exec(message) ??
    /Could not find an implementation for (\w+)\(\d+\)/.exec(message);
  return match?.[1];
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}
