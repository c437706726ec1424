/**
 * The ONNX exporter: linear text models (`src/training/model.ts`) and convolutional image
 * classifiers (`src/training/cnn.ts`). Runtime-agnostic: runs in Node and in workerd (no `fs`, no
 * `eval`; the protobuf code is the static module in `./generated`).
 *
 * Text graph contract (what the Worker feeds and reads):
 *   inputs  `ids`    int64   [batch, n]  bucket ids, rows padded with id 0
 *           `values` float32 [batch, n]  feature values, rows padded with 0
 *   output  `scores` float32 [batch, K]  per-label probabilities, K = labels.length
 *
 * int8 graph (C = logit columns, see `columnsFor`):
 *   Gather(W int8 [buckets, C], ids)                   → int8  [batch, n, C]
 *   DequantizeLinear(·, W_scale [C], W_zero_point [C] = 0, axis = 2) → float [batch, n, C]
 *   Mul(·, Unsqueeze(values, axes = [2]))              → float [batch, n, C]
 *   ReduceSum(·, axes = [1], keepdims = 0)             → float [batch, C]
 *   Add(·, bias [C])                                   → logits
 *   Sigmoid (multilabel, binary) | Softmax(axis = −1) (multiclass)
 *   binary with two labels: p = Sigmoid(logit) [batch, 1] → Concat(1 − p, p, axis = 1) → [batch, 2]
 * Only the gathered rows are dequantized, never the whole matrix. The float graph is the same
 * without DequantizeLinear.
 *
 * Image graph contract: input `image` float32 [batch, C, H, W] (preprocessed, see
 * `src/image/preprocess.ts`), output `scores` float32 [batch, K] (softmax). One node per layer:
 *   conv    → Conv(x, W, B, kernel_shape, pads, strides = 1)   W [F, C, k, k]
 *   relu    → Relu
 *   maxpool → MaxPool(kernel_shape = strides = [s, s]); avgpool → AveragePool (same attributes)
 *   dense   → Gemm(x, W, B, transB = 1)   W [units, inputs]; a 4-D x is Flatten(axis = 1)ed first
 *   then Softmax(axis = −1).
 * int8: each W is an int8 initializer + per-output-channel float32 scales (zero point 0), turned into
 * float by DequantizeLinear(axis = 0) in front of its Conv/Gemm; biases stay float32.
 * Opset 17, IR version 8, for both.
 */

import $protobuf from "protobufjs/minimal.js";
import type { TextFeaturizerSpec } from "../featurizer/text";
import { sha256Hex } from "../hash";
import {
  type ImageModelManifest,
  type ImagePreprocessSpec,
  imageManifestSchema,
  type TextModelManifest,
  textManifestSchema,
} from "../inference/manifest";
import type { CnnModel, QuantizedWeights } from "../training/cnn";
import type { EmbedBagModel } from "../training/embedbag";
import type { LinearTextModel } from "../training/model";
import { onnx } from "./generated/onnx.js";

/** ONNX opset (default domain) the exported graphs use. */
export const ONNX_OPSET = 17;
/** ONNX IR version written into exported models. */
export const ONNX_IR_VERSION = 8;
/** Graph input/output names (recorded in the manifest). */
export const GRAPH_NAMES = { ids: "ids", values: "values", image: "image", scores: "scores" } as const;

const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

function float32Bytes(data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] as number, true);
  return out;
}

function int64Bytes(data: readonly number[]): Uint8Array {
  const out = new Uint8Array(data.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setBigInt64(i * 8, BigInt(data[i] as number), true);
  return out;
}

function tensor(name: string, dataType: number, dims: number[], rawData: Uint8Array): onnx.ITensorProto {
  return { name, dataType, dims, rawData };
}

function tensorValue(name: string, elemType: number, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function intAttr(name: string, i: number): onnx.IAttributeProto {
  return { name, type: AT.INT, i };
}

function intsAttr(name: string, ints: number[]): onnx.IAttributeProto {
  return { name, type: AT.INTS, ints };
}

function node(
  opType: string,
  input: string[],
  output: string[],
  attribute: onnx.IAttributeProto[] = [],
): onnx.INodeProto {
  return { opType, input, output, name: `${opType}_${output[0]}`, attribute };
}

/** Identification written into the model's `metadata_props` (and the manifest). */
export interface ExportMetadata {
  /** Model id (`MODEL_ID_RE`). */
  id: string;
  /** Model version (`MODEL_VERSION_RE`). */
  version: string;
  /** Free text for the manifest / ONNX doc string. */
  description?: string;
}

/**
 * Serialises `model` as an ONNX ModelProto following the graph contract above. Deterministic: the
 * same model and metadata give the same bytes (no timestamps inside).
 */
export function buildOnnxModel(model: LinearTextModel, meta: ExportMetadata): Uint8Array {
  const C = model.columns;
  const K = model.labels.length;
  const buckets = model.spec.buckets;
  if (model.weights.length !== buckets * C) throw new Error("weights must be [buckets * columns]");
  if (model.bias.length !== C) throw new Error("bias must be [columns]");
  if (model.task === "binary" ? C !== 1 || K > 2 : C !== K) throw new Error("columns do not fit the task");

  const initializer: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  if (model.quantization === "int8") {
    const w = model.weights;
    initializer.push(
      tensor("W", DT.INT8, [buckets, C], new Uint8Array(w.buffer, w.byteOffset, w.byteLength)),
      tensor("W_scale", DT.FLOAT, [C], float32Bytes(model.scales)),
      tensor("W_zero_point", DT.INT8, [C], new Uint8Array(C)),
    );
    nodes.push(
      node("Gather", ["W", GRAPH_NAMES.ids], ["w_q"], [intAttr("axis", 0)]),
      node("DequantizeLinear", ["w_q", "W_scale", "W_zero_point"], ["w_rows"], [intAttr("axis", 2)]),
    );
  } else {
    initializer.push(tensor("W", DT.FLOAT, [buckets, C], float32Bytes(model.weights)));
    nodes.push(node("Gather", ["W", GRAPH_NAMES.ids], ["w_rows"], [intAttr("axis", 0)]));
  }
  initializer.push(
    tensor("bias", DT.FLOAT, [C], float32Bytes(model.bias)),
    tensor("unsqueeze_axes", DT.INT64, [1], int64Bytes([2])),
    tensor("reduce_axes", DT.INT64, [1], int64Bytes([1])),
  );
  nodes.push(
    node("Unsqueeze", [GRAPH_NAMES.values, "unsqueeze_axes"], ["values_3d"]),
    node("Mul", ["w_rows", "values_3d"], ["weighted"]),
    node("ReduceSum", ["weighted", "reduce_axes"], ["logits_nobias"], [intAttr("keepdims", 0)]),
    node("Add", ["logits_nobias", "bias"], ["logits"]),
  );
  scoresFromLogits(model.task, K, initializer, nodes);

  return textModelProto(meta, model, model.quantization, [], nodes, initializer);
}

/**
 * The ONNX model of a text graph over our featurizer: inputs `ids` (int64) and `values` (float32),
 * both `[batch, n]`, output `scores` `[batch, labels]`; metadata task, labels, quantization and
 * featurizer spec, then `extra`.
 */
function textModelProto(
  meta: ManifestMetadata,
  model: { task: string; labels: readonly string[]; spec: TextFeaturizerSpec },
  quantization: string,
  extra: onnx.IStringStringEntryProto[],
  nodes: onnx.INodeProto[],
  initializer: onnx.ITensorProto[],
): Uint8Array {
  return modelProto(
    meta,
    [
      { key: "task", value: model.task },
      { key: "labels", value: JSON.stringify(model.labels) },
      { key: "quantization", value: quantization },
      { key: "featurizer", value: JSON.stringify(model.spec) },
      ...extra,
    ],
    {
      node: nodes,
      initializer,
      input: [
        tensorValue(GRAPH_NAMES.ids, DT.INT64, ["batch", "n"]),
        tensorValue(GRAPH_NAMES.values, DT.FLOAT, ["batch", "n"]),
      ],
      output: [tensorValue(GRAPH_NAMES.scores, DT.FLOAT, ["batch", model.labels.length])],
    },
  );
}

/**
 * Exports `model` as ONNX bytes plus its validated manifest (`textManifestSchema`). `metrics` go into
 * the manifest as-is (non-finite values are dropped); `createdAt` defaults to now.
 */
export async function exportModel(
  model: LinearTextModel,
  meta: ManifestMetadata,
): Promise<{ onnx: Uint8Array; manifest: TextModelManifest }> {
  const bytes = buildOnnxModel(model, meta);
  const manifest = textManifestSchema.parse({
    task: model.task,
    labels: [...model.labels],
    featurizer: { ...model.spec },
    inputs: { ids: GRAPH_NAMES.ids, values: GRAPH_NAMES.values },
    ...(await commonManifestFields(model, meta, bytes)),
  });
  return { onnx: bytes, manifest };
}

/** The output tail shared by text graphs: `logits` → `scores` according to the task. */
function scoresFromLogits(
  task: string,
  K: number,
  initializer: onnx.ITensorProto[],
  nodes: onnx.INodeProto[],
): void {
  if (task === "multiclass") {
    nodes.push(node("Softmax", ["logits"], [GRAPH_NAMES.scores], [intAttr("axis", -1)]));
  } else if (task === "binary" && K === 2) {
    initializer.push(tensor("one", DT.FLOAT, [1], float32Bytes([1])));
    nodes.push(
      node("Sigmoid", ["logits"], ["p_last"]),
      node("Sub", ["one", "p_last"], ["p_first"]),
      node("Concat", ["p_first", "p_last"], [GRAPH_NAMES.scores], [intAttr("axis", 1)]),
    );
  } else {
    nodes.push(node("Sigmoid", ["logits"], [GRAPH_NAMES.scores]));
  }
}

/**
 * Serialises the embedding-bag network (`src/training/embedbag.ts`) with the text graph contract
 * (same inputs and output as the linear graph, so the Worker runs it unchanged):
 *   Gather(E int8 [buckets, dim], ids) → DequantizeLinear(axis = 2) → × values → ReduceSum(axis 1)
 *   → Gemm(W1 [hidden, dim] int8 → DequantizeLinear(axis = 0), b1, transB) → Relu
 *   → Gemm(W2 [columns, hidden], b2, transB) → logits → Sigmoid (binary with two labels: [1 − p, p]).
 */
export function buildEmbedBagOnnxModel(model: EmbedBagModel, meta: ExportMetadata): Uint8Array {
  const q = model.quantized;
  if (model.quantization !== "int8" || !q) throw new Error("export the int8 network (quantizeEmbedBag)");
  const { dim: d, hidden: H, columns: C } = model;
  const B = model.spec.buckets;
  const K = model.labels.length;
  const bytes = (a: Int8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const initializer: onnx.ITensorProto[] = [
    tensor("E", DT.INT8, [B, d], bytes(q.embedding.values)),
    tensor("E_scale", DT.FLOAT, [d], float32Bytes(q.embedding.scales)),
    tensor("E_zero_point", DT.INT8, [d], new Uint8Array(d)),
    tensor("W1_q", DT.INT8, [H, d], bytes(q.w1.values)),
    tensor("W1_scale", DT.FLOAT, [H], float32Bytes(q.w1.scales)),
    tensor("W1_zero_point", DT.INT8, [H], new Uint8Array(H)),
    tensor("B1", DT.FLOAT, [H], float32Bytes(model.b1)),
    tensor("W2_q", DT.INT8, [C, H], bytes(q.w2.values)),
    tensor("W2_scale", DT.FLOAT, [C], float32Bytes(q.w2.scales)),
    tensor("W2_zero_point", DT.INT8, [C], new Uint8Array(C)),
    tensor("B2", DT.FLOAT, [C], float32Bytes(model.b2)),
    tensor("unsqueeze_axes", DT.INT64, [1], int64Bytes([2])),
    tensor("reduce_axes", DT.INT64, [1], int64Bytes([1])),
  ];
  const nodes: onnx.INodeProto[] = [
    node("Gather", ["E", GRAPH_NAMES.ids], ["e_q"], [intAttr("axis", 0)]),
    node("DequantizeLinear", ["e_q", "E_scale", "E_zero_point"], ["e_rows"], [intAttr("axis", 2)]),
    node("Unsqueeze", [GRAPH_NAMES.values, "unsqueeze_axes"], ["values_3d"]),
    node("Mul", ["e_rows", "values_3d"], ["e_weighted"]),
    node("ReduceSum", ["e_weighted", "reduce_axes"], ["bag"], [intAttr("keepdims", 0)]),
    node("DequantizeLinear", ["W1_q", "W1_scale", "W1_zero_point"], ["W1"], [intAttr("axis", 0)]),
    node("Gemm", ["bag", "W1", "B1"], ["hidden_pre"], [intAttr("transB", 1)]),
    node("Relu", ["hidden_pre"], ["hidden"]),
    node("DequantizeLinear", ["W2_q", "W2_scale", "W2_zero_point"], ["W2"], [intAttr("axis", 0)]),
    node("Gemm", ["hidden", "W2", "B2"], ["logits"], [intAttr("transB", 1)]),
  ];
  scoresFromLogits(model.task, K, initializer, nodes);
  return textModelProto(meta, model, "int8", [{ key: "network", value: "mlp" }], nodes, initializer);
}

/** Exports the int8 embedding-bag network as ONNX bytes plus its validated text manifest. */
export async function exportEmbedBagModel(
  model: EmbedBagModel,
  meta: ManifestMetadata,
): Promise<{ onnx: Uint8Array; manifest: TextModelManifest }> {
  const bytes = buildEmbedBagOnnxModel(model, meta);
  const manifest = textManifestSchema.parse({
    task: model.task,
    labels: [...model.labels],
    featurizer: { ...model.spec },
    inputs: { ids: GRAPH_NAMES.ids, values: GRAPH_NAMES.values },
    network: "mlp",
    ...(await commonManifestFields({ quantization: "int8" }, meta, bytes)),
  });
  return { onnx: bytes, manifest };
}

/** What an exporter knows about a model beyond its graph: id, version, metrics, dates. */
type ManifestMetadata = ExportMetadata & { metrics?: Record<string, number>; createdAt?: Date };

/**
 * The manifest fields every exporter writes the same way: identity, output name, quantization,
 * checksum and size of `bytes`, finite metrics (others dropped), `created_at` (default now).
 */
async function commonManifestFields(
  model: { quantization: "int8" | "none" },
  meta: ManifestMetadata,
  bytes: Uint8Array,
) {
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(meta.metrics ?? {})) if (Number.isFinite(v)) metrics[k] = v;
  return {
    id: meta.id,
    version: meta.version,
    output: GRAPH_NAMES.scores,
    quantization: model.quantization,
    sha256: await sha256Hex(bytes),
    size_bytes: bytes.byteLength,
    metrics,
    created_at: (meta.createdAt ?? new Date()).toISOString(),
    ...(meta.description === undefined ? {} : { description: meta.description }),
  };
}

function modelProto(
  meta: ExportMetadata,
  metadataProps: onnx.IStringStringEntryProto[],
  graph: Omit<onnx.IGraphProto, "name">,
  opsets: onnx.IOperatorSetIdProto[] = [{ domain: "", version: ONNX_OPSET }],
): Uint8Array {
  const message: onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    producerName: "edge-inference",
    producerVersion: "1",
    domain: "",
    modelVersion: 1,
    docString: meta.description ?? "",
    opsetImport: opsets,
    metadataProps: [
      { key: "model_id", value: meta.id },
      { key: "model_version", value: meta.version },
      ...metadataProps,
    ],
    graph: { name: `${meta.id}_${meta.version}`.replace(/[^\w]/g, "_"), ...graph },
  };
  // The plain Uint8Array writer, not protobufjs's default Node `Buffer` writer: workerd's `Buffer`
  // (nodejs_compat) rejects the `utf8Write` call that writer makes.
  return onnx.ModelProto.encode(message, new $protobuf.Writer()).finish();
}

/**
 * Serialises a CNN (`src/training/cnn.ts`) as an ONNX ModelProto following the image graph contract
 * above. Deterministic: the same model and metadata give the same bytes.
 */
export function buildCnnOnnxModel(model: CnnModel, meta: ExportMetadata): Uint8Array {
  const { channels, height, width } = model.input;
  const initializer: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  let x: string = GRAPH_NAMES.image;
  let rank = 4;
  // A weight tensor as a graph value: float initializer, or int8 + scales → DequantizeLinear.
  const weight = (name: string, dims: number[], w: Float32Array, q: QuantizedWeights | undefined): string => {
    if (model.quantization !== "int8") {
      initializer.push(tensor(name, DT.FLOAT, dims, float32Bytes(w)));
      return name;
    }
    if (!q) throw new Error(`${name}: an int8 model needs quantized weights on every conv/dense layer`);
    pushInt8Weight(initializer, nodes, name, dims, q);
    return name;
  };
  model.layers.forEach((layer, i) => {
    const y = `t${i}_${layer.type}`;
    if (layer.type === "conv") {
      const dims = [layer.filters, layer.inChannels, layer.kernel, layer.kernel];
      const w = weight(`conv${i}_W`, dims, layer.weights, layer.quantized);
      initializer.push(tensor(`conv${i}_B`, DT.FLOAT, [layer.filters], float32Bytes(layer.bias)));
      nodes.push(
        node(
          "Conv",
          [x, w, `conv${i}_B`],
          [y],
          [
            intsAttr("kernel_shape", [layer.kernel, layer.kernel]),
            intsAttr("pads", [layer.pad, layer.pad, layer.pad, layer.pad]),
            intsAttr("strides", [1, 1]),
          ],
        ),
      );
    } else if (layer.type === "dense") {
      if (rank !== 2) {
        nodes.push(node("Flatten", [x], [`t${i}_flat`], [intAttr("axis", 1)]));
        x = `t${i}_flat`;
        rank = 2;
      }
      const w = weight(`dense${i}_W`, [layer.units, layer.inputs], layer.weights, layer.quantized);
      initializer.push(tensor(`dense${i}_B`, DT.FLOAT, [layer.units], float32Bytes(layer.bias)));
      nodes.push(node("Gemm", [x, w, `dense${i}_B`], [y], [intAttr("transB", 1)]));
    } else if (layer.type === "relu") {
      nodes.push(node("Relu", [x], [y]));
    } else {
      const size = [layer.size, layer.size];
      const op = layer.type === "maxpool" ? "MaxPool" : "AveragePool";
      nodes.push(node(op, [x], [y], [intsAttr("kernel_shape", size), intsAttr("strides", size)]));
    }
    x = y;
  });
  if (rank !== 2) throw new Error("the last layer must be dense");
  nodes.push(node("Softmax", [x], [GRAPH_NAMES.scores], [intAttr("axis", -1)]));
  return modelProto(
    meta,
    [
      { key: "task", value: model.task },
      { key: "labels", value: JSON.stringify(model.labels) },
      { key: "quantization", value: model.quantization },
    ],
    {
      node: nodes,
      initializer,
      input: [tensorValue(GRAPH_NAMES.image, DT.FLOAT, ["batch", channels, height, width])],
      output: [tensorValue(GRAPH_NAMES.scores, DT.FLOAT, ["batch", model.labels.length])],
    },
  );
}

/**
 * Exports a CNN as ONNX bytes plus its validated image manifest; `preprocess` is how the Worker turns
 * a decoded image into the graph's input (its size and channels must match the model's input).
 */
export async function exportImageModel(
  model: CnnModel,
  meta: ManifestMetadata & { preprocess: ImagePreprocessSpec },
): Promise<{ onnx: Uint8Array; manifest: ImageModelManifest }> {
  const { preprocess } = meta;
  if (
    preprocess.layout !== "NCHW" ||
    preprocess.channels !== model.input.channels ||
    preprocess.height !== model.input.height ||
    preprocess.width !== model.input.width
  ) {
    throw new Error("the preprocess spec does not match the model's input shape (NCHW)");
  }
  const bytes = buildCnnOnnxModel(model, meta);
  const manifest = imageManifestSchema.parse({
    kind: "image",
    task: model.task,
    labels: [...model.labels],
    preprocess,
    inputs: { image: GRAPH_NAMES.image },
    ...(await commonManifestFields(model, meta, bytes)),
  });
  return { onnx: bytes, manifest };
}

/**
 * A feed-forward image graph in ONNX terms (NCHW activations), what an importer such as
 * `src/keras/` produces. Conv weights are `[F, C / group, kh, kw]`, Gemm weights `[units, inputs]`
 * (`transB = 1`); pads are `[top, left, bottom, right]`. `input` names the graph input; each op reads
 * values produced by earlier ops (or the input) and writes `output`.
 */
export type GraphOp =
  | {
      op: "conv";
      input: string;
      output: string;
      weights: Float32Array;
      dims: [number, number, number, number];
      bias: Float32Array;
      strides: [number, number];
      dilations: [number, number];
      pads: [number, number, number, number];
      group: number;
    }
  | { op: "gemm"; input: string; output: string; weights: Float32Array; units: number; bias: Float32Array }
  | { op: "relu" | "sigmoid" | "tanh" | "softmax" | "flatten"; input: string; output: string }
  | { op: "leaky_relu"; input: string; output: string; alpha: number }
  | { op: "clip"; input: string; output: string; min: number; max: number }
  | { op: "add" | "concat"; inputs: string[]; output: string }
  | { op: "pad"; input: string; output: string; pads: [number, number, number, number] }
  | {
      op: "avgpool" | "maxpool";
      input: string;
      output: string;
      kernel: [number, number];
      strides: [number, number];
      pads: [number, number, number, number];
    }
  | { op: "global_avgpool"; input: string; output: string }
  | { op: "transpose"; input: string; output: string; perm: number[] }
  | { op: "unsqueeze_hw"; input: string; output: string }
  | {
      op: "affine";
      input: string;
      output: string;
      scale: Float32Array;
      shift: Float32Array;
      /** On a 2-D value `[batch, C]` (default: NCHW). */
      flat?: boolean;
    };

/** An imported image classifier: its ops and the input/output contract. */
export interface ImageGraph {
  /** `NHWC` (the graph transposes it to NCHW first) or `NCHW`. */
  layout: "NHWC" | "NCHW";
  channels: number;
  height: number;
  width: number;
  labels: string[];
  /** In order; the last op must be a softmax producing `[batch, labels]`. */
  ops: GraphOp[];
  /** The value name the input ops read (it is fed by the graph input, transposed if NHWC). */
  input: string;
}

/**
 * Adds an int8 weight with one scale per output row (`<name>_q`, `<name>_scale`, zero points 0) and
 * the `DequantizeLinear` (axis 0) that gives the graph the float value `name`.
 */
function pushInt8Weight(
  initializer: onnx.ITensorProto[],
  nodes: onnx.INodeProto[],
  name: string,
  dims: number[],
  q: { values: Int8Array; scales: Float32Array },
): void {
  const outs = dims[0] as number;
  initializer.push(
    tensor(
      `${name}_q`,
      DT.INT8,
      dims,
      new Uint8Array(q.values.buffer, q.values.byteOffset, q.values.byteLength),
    ),
    tensor(`${name}_scale`, DT.FLOAT, [outs], float32Bytes(q.scales)),
    tensor(`${name}_zero_point`, DT.INT8, [outs], new Uint8Array(outs)),
  );
  nodes.push(
    node(
      "DequantizeLinear",
      [`${name}_q`, `${name}_scale`, `${name}_zero_point`],
      [name],
      [intAttr("axis", 0)],
    ),
  );
}

/**
 * Per-output-channel symmetric int8 quantization of `w` (`outs` rows, zero point 0): `scale =
 * max|w| / 127` as float32 (1 for an all-zero row), `q = round(w / scale)`.
 */
export function quantizeRows(w: Float32Array, outs: number): { values: Int8Array; scales: Float32Array } {
  const per = w.length / outs;
  const values = new Int8Array(w.length);
  const scales = new Float32Array(outs);
  for (let o = 0; o < outs; o++) {
    let max = 0;
    for (let i = o * per; i < (o + 1) * per; i++) max = Math.max(max, Math.abs(w[i] as number));
    const scale = Math.fround(max > 0 ? max / 127 : 1);
    scales[o] = scale;
    for (let i = o * per; i < (o + 1) * per; i++)
      values[i] = Math.max(-127, Math.min(127, Math.round((w[i] as number) / scale)));
  }
  return { values, scales };
}

/**
 * Serialises an `ImageGraph` as an ONNX ModelProto following the image graph contract (input
 * `image` in the graph's `layout`, output `scores`). `quantization: "int8"` stores every conv (but
 * grouped/depthwise ones) and gemm weight as int8 per output channel behind a
 * DequantizeLinear(axis = 0); biases stay float32.
 * Deterministic.
 */
export function buildImageGraphOnnx(
  graph: ImageGraph,
  quantization: "int8" | "none",
  meta: ExportMetadata,
): Uint8Array {
  const initializer: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  const last = graph.ops.at(-1);
  if (last?.op !== "softmax") throw new Error("the graph's last op must be a softmax");
  const rename = (v: string): string => (v === last.output ? GRAPH_NAMES.scores : v);
  const { channels, height, width } = graph;
  const inputDims =
    graph.layout === "NHWC" ? ["batch", height, width, channels] : ["batch", channels, height, width];
  if (graph.layout === "NHWC") {
    nodes.push(node("Transpose", [GRAPH_NAMES.image], [graph.input], [intsAttr("perm", [0, 3, 1, 2])]));
  } else {
    nodes.push(node("Identity", [GRAPH_NAMES.image], [graph.input]));
  }
  const weight = (name: string, dims: number[], w: Float32Array, keepFloat = false): string => {
    if (quantization !== "int8" || keepFloat) {
      initializer.push(tensor(name, DT.FLOAT, dims, float32Bytes(w)));
      return name;
    }
    pushInt8Weight(initializer, nodes, name, dims, quantizeRows(w, dims[0] as number));
    return name;
  };
  const floatConst = (name: string, dims: number[], data: ArrayLike<number>): string => {
    initializer.push(tensor(name, DT.FLOAT, dims, float32Bytes(data)));
    return name;
  };
  const int64Const = (name: string, data: number[]): string => {
    initializer.push(tensor(name, DT.INT64, [data.length], int64Bytes(data)));
    return name;
  };
  graph.ops.forEach((op, i) => {
    const y = rename(op.output);
    switch (op.op) {
      case "conv": {
        // Depthwise/grouped kernels stay float: few parameters, and 9 taps per channel quantize badly.
        const w = weight(`op${i}_W`, op.dims, op.weights, op.group > 1);
        const b = floatConst(`op${i}_B`, [op.dims[0]], op.bias);
        nodes.push(
          node(
            "Conv",
            [op.input, w, b],
            [y],
            [
              intsAttr("kernel_shape", [op.dims[2], op.dims[3]]),
              intsAttr("strides", op.strides),
              intsAttr("dilations", op.dilations),
              // ONNX order: [top, left, bottom, right] = [x1_begin, x2_begin, x1_end, x2_end].
              intsAttr("pads", op.pads),
              intAttr("group", op.group),
            ],
          ),
        );
        break;
      }
      case "gemm": {
        const inputs = op.weights.length / op.units;
        const w = weight(`op${i}_W`, [op.units, inputs], op.weights);
        const b = floatConst(`op${i}_B`, [op.units], op.bias);
        nodes.push(node("Gemm", [op.input, w, b], [y], [intAttr("transB", 1)]));
        break;
      }
      case "relu":
        nodes.push(node("Relu", [op.input], [y]));
        break;
      case "sigmoid":
        nodes.push(node("Sigmoid", [op.input], [y]));
        break;
      case "tanh":
        nodes.push(node("Tanh", [op.input], [y]));
        break;
      case "softmax":
        nodes.push(node("Softmax", [op.input], [y], [intAttr("axis", -1)]));
        break;
      case "flatten":
        nodes.push(node("Flatten", [op.input], [y], [intAttr("axis", 1)]));
        break;
      case "leaky_relu":
        nodes.push(node("LeakyRelu", [op.input], [y], [{ name: "alpha", type: AT.FLOAT, f: op.alpha }]));
        break;
      case "clip":
        nodes.push(
          node(
            "Clip",
            [op.input, floatConst(`op${i}_min`, [], [op.min]), floatConst(`op${i}_max`, [], [op.max])],
            [y],
          ),
        );
        break;
      case "add":
        nodes.push(node(op.inputs.length === 2 ? "Add" : "Sum", op.inputs, [y]));
        break;
      case "concat":
        nodes.push(node("Concat", op.inputs, [y], [intAttr("axis", 1)]));
        break;
      case "pad": {
        const [t, l, b, r] = op.pads;
        nodes.push(node("Pad", [op.input, int64Const(`op${i}_pads`, [0, 0, t, l, 0, 0, b, r])], [y]));
        break;
      }
      case "avgpool":
      case "maxpool":
        nodes.push(
          node(
            op.op === "avgpool" ? "AveragePool" : "MaxPool",
            [op.input],
            [y],
            [intsAttr("kernel_shape", op.kernel), intsAttr("strides", op.strides), intsAttr("pads", op.pads)],
          ),
        );
        break;
      case "global_avgpool":
        nodes.push(node("GlobalAveragePool", [op.input], [y]));
        break;
      case "transpose":
        nodes.push(node("Transpose", [op.input], [y], [intsAttr("perm", op.perm)]));
        break;
      case "unsqueeze_hw":
        nodes.push(node("Unsqueeze", [op.input, int64Const(`op${i}_axes`, [2, 3])], [y]));
        break;
      case "affine": {
        const c = op.scale.length;
        const dims = op.flat ? [1, c] : [1, c, 1, 1];
        const s = floatConst(`op${i}_scale`, dims, op.scale);
        const t = floatConst(`op${i}_shift`, dims, op.shift);
        nodes.push(node("Mul", [op.input, s], [`op${i}_scaled`]), node("Add", [`op${i}_scaled`, t], [y]));
        break;
      }
    }
  });
  return modelProto(
    meta,
    [
      { key: "task", value: "multiclass" },
      { key: "labels", value: JSON.stringify(graph.labels) },
      { key: "quantization", value: quantization },
    ],
    {
      node: nodes,
      initializer,
      input: [tensorValue(GRAPH_NAMES.image, DT.FLOAT, inputDims)],
      output: [tensorValue(GRAPH_NAMES.scores, DT.FLOAT, ["batch", graph.labels.length])],
    },
  );
}

/**
 * Exports an imported image graph as ONNX bytes plus its validated image manifest; `preprocess` must
 * declare the graph's input size, channels and layout.
 */
export async function exportImageGraph(
  graph: ImageGraph,
  meta: ManifestMetadata & { preprocess: ImagePreprocessSpec; quantization: "int8" | "none" },
): Promise<{ onnx: Uint8Array; manifest: ImageModelManifest }> {
  const { preprocess, quantization } = meta;
  if (
    preprocess.channels !== graph.channels ||
    preprocess.height !== graph.height ||
    preprocess.width !== graph.width ||
    preprocess.layout !== graph.layout
  ) {
    throw new Error("the preprocess spec does not match the graph's input shape or layout");
  }
  const bytes = buildImageGraphOnnx(graph, quantization, meta);
  const manifest = imageManifestSchema.parse({
    kind: "image",
    task: "multiclass",
    labels: [...graph.labels],
    preprocess,
    inputs: { image: GRAPH_NAMES.image },
    ...(await commonManifestFields({ quantization }, meta, bytes)),
  });
  return { onnx: bytes, manifest };
}

/*
 * "Bring your own model" shapes: graphs as scikit-learn exporters write them, built from our own
 * weights so the repository needs no downloaded model.
 *
 * TF-IDF + logistic regression, as skl2onnx converts `Pipeline([TfidfVectorizer, LogisticRegression])`
 * with a `StringTensorType([None, 1])` input and `zipmap=False`:
 *   input  `input` string [batch, 1]
 *   Reshape(·, [-1])                                           → string [batch]
 *   StringNormalizer(case_change_action = LOWER)               → string [batch]
 *   Tokenizer (com.microsoft; tokenexp, mark = 0, pad "#")     → string [batch, tokens]
 *   TfIdfVectorizer(mode = TF, word n-grams, pool_strings)     → float [batch, features]
 *   Mul(·, idf)                                                → tf·idf
 *   Normalizer (ai.onnx.ml, norm = L2)                         → float [batch, features]
 *   LinearClassifier (ai.onnx.ml; binary: coefficients [−w, w], post_transform LOGISTIC;
 *                     multiclass: SOFTMAX)                     → `output_label` string [batch],
 *                                                                `output_probability` float [batch, K]
 * With `zipmap: true` a ZipMap turns the probabilities into a sequence of maps, as skl2onnx does by
 * default — the shape the registry refuses.
 *
 * MLP over a numeric tensor (`tensor` kind): `features` float [batch, D] → Gemm → Relu → Gemm →
 * Softmax → `probabilities` float [batch, K], plus the `logits`.
 */

/** Opsets of the scikit-learn-shaped graphs (skl2onnx's usual choice for these operators). */
const SKLEARN_OPSETS: onnx.IOperatorSetIdProto[] = [
  { domain: "", version: ONNX_OPSET },
  { domain: "ai.onnx.ml", version: 1 },
  { domain: "com.microsoft", version: 1 },
];

/** Graph names of the scikit-learn-shaped text pipeline (skl2onnx's defaults). */
export const SKLEARN_NAMES = {
  input: "input",
  label: "output_label",
  probabilities: "output_probability",
} as const;

const utf8 = new TextEncoder();

function stringAttr(name: string, s: string): onnx.IAttributeProto {
  return { name, type: AT.STRING, s: utf8.encode(s) };
}

function stringsAttr(name: string, strings: readonly string[]): onnx.IAttributeProto {
  return { name, type: AT.STRINGS, strings: strings.map((s) => utf8.encode(s)) };
}

function floatsAttr(name: string, floats: ArrayLike<number>): onnx.IAttributeProto {
  return { name, type: AT.FLOATS, floats: Array.from(floats) };
}

function domainNode(
  domain: string,
  opType: string,
  input: string[],
  output: string[],
  attribute: onnx.IAttributeProto[] = [],
): onnx.INodeProto {
  return { ...node(opType, input, output, attribute), domain };
}

/** What the scikit-learn-shaped text exporter needs (see `TfidfPipeline` in src/training/tfidf.ts). */
export interface TfidfPipelineWeights {
  task: "binary" | "multiclass";
  labels: readonly string[];
  ngramRange: readonly [number, number];
  vocabulary: readonly string[];
  idf: Float32Array;
  coefficients: Float32Array;
  intercepts: Float32Array;
}

/**
 * Serialises a TF-IDF + logistic regression pipeline in the graph shape skl2onnx produces (see
 * above). `tokenPattern` is the RE2 pattern of the Tokenizer; `zipmap` adds skl2onnx's default
 * ZipMap output (for testing the refusal); `flatInput` declares the input `[batch]`
 * (`StringTensorType([None])`) instead of `[batch, 1]`.
 */
export function buildTfidfPipelineOnnx(
  pipeline: TfidfPipelineWeights,
  meta: ExportMetadata & { tokenPattern: string; zipmap?: boolean; flatInput?: boolean },
): Uint8Array {
  const F = pipeline.vocabulary.length;
  const K = pipeline.labels.length;
  const [lo, hi] = pipeline.ngramRange;
  // TfIdfVectorizer's pool: all 1-grams, then all 2-grams, … (each n-gram as n strings); ngram_counts
  // holds where each length starts, ngram_indexes the output column of each pool entry.
  const pool: string[] = [];
  const counts: number[] = [];
  const indexes: number[] = [];
  for (let n = 1; n <= hi; n++) {
    counts.push(indexes.length);
    pipeline.vocabulary.forEach((gram, j) => {
      const words = gram.split(" ");
      if (words.length !== n) return;
      pool.push(...words);
      indexes.push(j);
    });
  }
  let coefficients = pipeline.coefficients;
  let intercepts = pipeline.intercepts;
  if (pipeline.task === "binary") {
    if (coefficients.length !== F || intercepts.length !== 1) throw new Error("binary: one column");
    coefficients = Float32Array.from([...coefficients.map((w) => -w), ...coefficients]);
    intercepts = Float32Array.from([-(intercepts[0] as number), intercepts[0] as number]);
  } else if (coefficients.length !== F * K || intercepts.length !== K) {
    throw new Error("multiclass: one column per label");
  }
  const probabilities = meta.zipmap ? "probabilities" : SKLEARN_NAMES.probabilities;
  const nodes: onnx.INodeProto[] = [
    node("Reshape", [SKLEARN_NAMES.input, "flat_shape"], ["flattened"]),
    node(
      "StringNormalizer",
      ["flattened"],
      ["normalized"],
      [stringAttr("case_change_action", "LOWER"), intAttr("is_case_sensitive", 0)],
    ),
    domainNode(
      "com.microsoft",
      "Tokenizer",
      ["normalized"],
      ["tokenized"],
      [
        intAttr("mark", 0),
        intAttr("mincharnum", 1),
        stringAttr("pad_value", "#"),
        stringAttr("tokenexp", meta.tokenPattern),
      ],
    ),
    node(
      "TfIdfVectorizer",
      ["tokenized"],
      ["tf"],
      [
        intAttr("min_gram_length", lo),
        intAttr("max_gram_length", hi),
        intAttr("max_skip_count", 0),
        stringAttr("mode", "TF"),
        intsAttr("ngram_counts", counts),
        intsAttr("ngram_indexes", indexes),
        stringsAttr("pool_strings", pool),
      ],
    ),
    node("Mul", ["tf", "idf"], ["tfidf"]),
    domainNode("ai.onnx.ml", "Normalizer", ["tfidf"], ["variable"], [stringAttr("norm", "L2")]),
    domainNode(
      "ai.onnx.ml",
      "LinearClassifier",
      ["variable"],
      [SKLEARN_NAMES.label, probabilities],
      [
        stringsAttr("classlabels_strings", pipeline.labels),
        floatsAttr("coefficients", coefficients),
        floatsAttr("intercepts", intercepts),
        intAttr("multi_class", 0),
        stringAttr("post_transform", pipeline.task === "binary" ? "LOGISTIC" : "SOFTMAX"),
      ],
    ),
  ];
  const output: onnx.IValueInfoProto[] = [tensorValue(SKLEARN_NAMES.label, DT.STRING, ["batch"])];
  if (meta.zipmap) {
    nodes.push(
      domainNode(
        "ai.onnx.ml",
        "ZipMap",
        [probabilities],
        [SKLEARN_NAMES.probabilities],
        [stringsAttr("classlabels_strings", pipeline.labels)],
      ),
    );
    output.push({
      name: SKLEARN_NAMES.probabilities,
      type: {
        sequenceType: {
          elemType: { mapType: { keyType: DT.STRING, valueType: { tensorType: { elemType: DT.FLOAT } } } },
        },
      },
    });
  } else {
    output.push(tensorValue(SKLEARN_NAMES.probabilities, DT.FLOAT, ["batch", K]));
  }
  return modelProto(
    meta,
    [],
    {
      node: nodes,
      initializer: [
        tensor("flat_shape", DT.INT64, [1], int64Bytes([-1])),
        tensor("idf", DT.FLOAT, [F], float32Bytes(pipeline.idf)),
      ],
      input: [tensorValue(SKLEARN_NAMES.input, DT.STRING, meta.flatInput ? ["batch"] : ["batch", 1])],
      output,
    },
    SKLEARN_OPSETS,
  );
}

/** A two-layer perceptron over a numeric feature vector (row-major `[out, in]` weights). */
export interface MlpWeights {
  inputs: number;
  hidden: number;
  outputs: number;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

/** Serialises an MLP as `features` [batch, D] → `logits`, `probabilities` [batch, K] (see above). */
export function buildMlpOnnx(mlp: MlpWeights, meta: ExportMetadata): Uint8Array {
  const { inputs: D, hidden: H, outputs: K } = mlp;
  if (mlp.w1.length !== H * D || mlp.b1.length !== H || mlp.w2.length !== K * H || mlp.b2.length !== K) {
    throw new Error("MLP weights do not match its sizes");
  }
  return modelProto(meta, [], {
    node: [
      node("Gemm", ["features", "W1", "B1"], ["hidden"], [intAttr("transB", 1)]),
      node("Relu", ["hidden"], ["hidden_relu"]),
      node("Gemm", ["hidden_relu", "W2", "B2"], ["logits"], [intAttr("transB", 1)]),
      node("Softmax", ["logits"], ["probabilities"], [intAttr("axis", -1)]),
    ],
    initializer: [
      tensor("W1", DT.FLOAT, [H, D], float32Bytes(mlp.w1)),
      tensor("B1", DT.FLOAT, [H], float32Bytes(mlp.b1)),
      tensor("W2", DT.FLOAT, [K, H], float32Bytes(mlp.w2)),
      tensor("B2", DT.FLOAT, [K], float32Bytes(mlp.b2)),
    ],
    input: [tensorValue("features", DT.FLOAT, ["batch", D])],
    output: [
      tensorValue("probabilities", DT.FLOAT, ["batch", K]),
      tensorValue("logits", DT.FLOAT, ["batch", K]),
    ],
  });
}
