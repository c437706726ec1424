/**
 * Validation of a model upload before anything is stored: manifest schema, size limit, sha256,
 * ONNX session creation (an operator the runtime lacks is named), the graph's signature against the
 * manifest's (`src/inference/signature.ts`) and a probe inference per kind. Every failure is a 422
 * `invalid_model` naming the problem, except a model that would not fit an isolate's memory (413
 * `model_too_large`).
 */

import {
  DEFAULT_OPTIMIZATION_LEVEL,
  type ImagePreprocessSpec,
  imageInputDims,
  imageManifestSchema,
  type ModelManifest,
  type OptimizationLevel,
  rawTextManifestSchema,
  type TensorModelManifest,
  tensorManifestSchema,
  textManifestSchema,
} from "../contracts/manifest";
import { ApiError } from "../errors";
import { featurizeBatch } from "../featurizer/text";
import { sha256Hex } from "../hash";
import {
  type CapturedOutput,
  captureOutputs,
  compareOutputs,
  type Disagreement,
  levelsFrom,
} from "../inference/optimization";
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
 * output with its declared datatype and shape. The probe runs first with graph optimizations
 * disabled (the reference), then at the manifest's level (default `all`, what the Worker uses) and
 * lower ones until the outputs agree (src/inference/optimization.ts): the result names the level the
 * model must run at. Every probe session is released afterwards; the WASM heap must not have grown
 * past `maxHeapBytes` (413 `model_too_large`).
 */
export async function validateModel(
  manifest: ModelManifest,
  bytes: Uint8Array,
  maxBytes: number,
  maxHeapBytes = Number.POSITIVE_INFINITY,
): Promise<Validation> {
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
  // The reference: optimizations disabled. Its outputs are the ones the checks look at.
  const reference = await openSession(bytes, "disabled", maxHeapBytes);
  let runs: ProbeRun[];
  const expected: CapturedOutput[][] = [];
  try {
    runs = probeRuns(reference, manifest);
    for (const run of runs) expected.push(await runProbe(reference, run));
  } finally {
    await reference.release();
  }
  const optimization = await agreeingLevel(bytes, runs, expected, manifest, maxHeapBytes);
  const heap = wasmHeapBytes() ?? 0;
  const grown = heap - (heapBefore ?? 0);
  // Only a model that made the heap grow past the budget is refused: a heap already that large
  // (other sessions cached in this isolate) says nothing about this model.
  if (grown > 0 && heap > maxHeapBytes) throw tooLarge(maxHeapBytes, undefined, heap);
  return { memory: { wasm_heap_bytes: heap, session_memory_bytes: grown }, optimization };
}

/** What `validateModel` found: the heap figures and the optimization level the model runs at. */
export interface Validation {
  memory: SessionMemory;
  optimization: OptimizationCheck;
}

/** The level a model runs at, and why each higher level was not used. */
export interface OptimizationCheck {
  level: OptimizationLevel;
  disagreements: { level: OptimizationLevel; output: string; detail: string }[];
}

/**
 * Runs the probe at the manifest's level (default `all`) and each lower one until its outputs agree
 * with the reference's (`disabled` always does).
 */
async function agreeingLevel(
  bytes: Uint8Array,
  runs: readonly ProbeRun[],
  expected: readonly CapturedOutput[][],
  manifest: ModelManifest,
  maxHeapBytes: number,
): Promise<OptimizationCheck> {
  const disagreements: OptimizationCheck["disagreements"] = [];
  for (const level of levelsFrom(manifest.graph_optimization_level ?? DEFAULT_OPTIMIZATION_LEVEL)) {
    const session = await openSession(bytes, level, maxHeapBytes);
    let disagreement: Disagreement | undefined;
    try {
      for (const [i, run] of runs.entries()) {
        disagreement = compareOutputs(
          expected[i] ?? [],
          await runProbe(session, { ...run, check: () => {} }),
        );
        if (disagreement) break;
      }
    } finally {
      await session.release();
    }
    if (!disagreement) return { level, disagreements };
    disagreements.push({ level, output: disagreement.output, detail: disagreement.detail });
  }
  return { level: "disabled", disagreements };
}

/** Creates a session at `level`; load failures become 422 (naming a missing operator) or 413. */
async function openSession(
  bytes: Uint8Array,
  level: OptimizationLevel,
  maxHeapBytes: number,
): Promise<ort.InferenceSession> {
  try {
    return await createSession(bytes, level);
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

/** One probe inference: its feeds, what it is (for messages), and the check of its outputs. */
interface ProbeRun {
  feeds: Record<string, ort.Tensor>;
  /** Names the run in messages: "example 2", "the probe texts", … */
  what: string;
  /** What to suggest when it fails (e.g. add `examples`), if anything. */
  hint?: string;
  check: (outputs: ort.InferenceSession.ReturnType) => void;
}

/** The probe runs of `manifest` on `session` (whose signature is checked first: 422 on a mismatch). */
function probeRuns(session: ort.InferenceSession, manifest: ModelManifest): ProbeRun[] {
  const problem = signatureProblem(session, manifest);
  if (problem !== undefined) throw invalid(problem);
  if (manifest.kind === "tensor") {
    const given = manifest.examples !== undefined;
    return exampleInputs(manifest).map((inputs, i) =>
      tensorRun(
        manifest,
        inputs,
        given
          ? { what: `example ${i + 1}` }
          : {
              what: "the default probe (all-zero inputs, dynamic dimensions 1: the manifest has no `examples`)",
              hint: "add `examples` to the manifest: inputs the model accepts (e.g. a real row), which the upload runs instead",
            },
      ),
    );
  }
  let feeds: Record<string, ort.Tensor>;
  let rows: number;
  let what: string;
  if (manifest.kind === "image") {
    rows = PROBE_IMAGES;
    what = "the probe images";
    feeds = { [manifest.inputs.image]: probeImages(manifest.preprocess, rows) };
  } else if (manifest.kind === "raw-text") {
    const texts = manifest.examples ?? PROBE_TEXTS;
    rows = texts.length;
    what = manifest.examples ? "the examples" : "the probe texts";
    const input = session.inputMetadata.find((m) => m.name === manifest.inputs.text);
    const dims = input?.isTensor && input.shape.length === 1 ? [rows] : [rows, 1];
    feeds = { [manifest.inputs.text]: new ort.Tensor("string", [...texts], dims) };
  } else {
    rows = PROBE_TEXTS.length;
    what = "the probe texts";
    const batch = featurizeBatch(PROBE_TEXTS, manifest.featurizer);
    feeds = {
      [manifest.inputs.ids]: new ort.Tensor("int64", batch.ids, batch.dims),
      [manifest.inputs.values]: new ort.Tensor("float32", batch.values, batch.dims),
    };
  }
  const check = (outputs: ort.InferenceSession.ReturnType) => {
    checkScores(outputs[manifest.output], rows, manifest);
    if (manifest.kind === "raw-text" && manifest.label_output) {
      const labels = outputs[manifest.label_output];
      if (labels?.dims.length !== 1 || labels.dims[0] !== rows) {
        throw invalid(
          `label output '${manifest.label_output}' has shape [${labels?.dims.join(", ") ?? ""}] for a batch of ${rows}; expected [${rows}]`,
        );
      }
    }
  };
  return [{ feeds, what, check }];
}

/**
 * `rows` probe images, already preprocessed: the first all zeros, the others a fixed pseudo-random
 * pattern of pixel values 0..255 normalized as the manifest says (zeros alone would hide
 * miscomputations that only show on varied inputs, such as a padding fused wrongly).
 */
function probeImages(preprocess: ImagePreprocessSpec, rows: number): ort.Tensor {
  const { channels, height, width, layout, normalize } = preprocess;
  const size = channels * height * width;
  const data = new Float32Array(rows * size);
  for (let i = size; i < data.length; i++) {
    const c = layout === "NHWC" ? i % channels : Math.floor((i % size) / (height * width));
    const pixel = Math.imul(i, 2654435761) >>> 24;
    data[i] = (pixel / 255 - (normalize.mean[c] as number)) / (normalize.std[c] as number);
  }
  return new ort.Tensor("float32", data, imageInputDims(preprocess, rows));
}

/**
 * Runs a probe through the session, hands the outputs to its check and returns a copy of them; they
 * are disposed either way.
 */
async function runProbe(session: ort.InferenceSession, run: ProbeRun): Promise<CapturedOutput[]> {
  let outputs: ort.InferenceSession.ReturnType;
  try {
    outputs = await session.run(run.feeds);
  } catch (cause) {
    throw invalid(
      `the probe inference on ${run.what} failed: ${errorText(cause)}${run.hint ? `; ${run.hint}` : ""}`,
      {},
      cause,
    );
  }
  try {
    run.check(outputs);
    return captureOutputs(outputs);
  } finally {
    for (const tensor of Object.values(outputs)) tensor.dispose();
  }
}

/** The probe run of one example of a `tensor` model: every declared output's datatype and shape. */
function tensorRun(
  manifest: TensorModelManifest,
  inputs: readonly WireTensor[],
  about: { what: string; hint?: string },
): ProbeRun {
  const { what, hint } = about;
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of manifest.inputs) {
    const input = inputs.find((t) => t.name === spec.name);
    if (!input) throw invalid(`${what} lacks input '${spec.name}'`);
    if (!shapeFits(spec.shape, input.shape)) {
      throw invalid(
        `input '${spec.name}' of ${what} has shape [${input.shape.join(", ")}]; declared [${spec.shape.join(", ")}]`,
      );
    }
    try {
      feeds[spec.name] = toOrtTensor(input);
    } catch (error) {
      throw invalid(`${what}: ${errorText(error)}`);
    }
  }
  const check = (outputs: ort.InferenceSession.ReturnType) => {
    for (const spec of manifest.outputs) {
      const tensor = outputs[spec.name];
      if (!tensor || datatypeOf(tensor.type) !== spec.datatype || !shapeFits(spec.shape, tensor.dims)) {
        throw invalid(
          `output '${spec.name}' is ${tensor ? `${tensor.type} [${tensor.dims.join(", ")}]` : "missing"} on ${what}; declared ${spec.datatype} [${spec.shape.join(", ")}]${hint ? `; ${hint}` : ""}`,
        );
      }
    }
  };
  return { feeds, what, ...(hint === undefined ? {} : { hint }), check };
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
