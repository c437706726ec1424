/**
 * Keras models in TF.js "layers" format (a `model.json`: Keras topology + weights manifest, and the
 * binary weight shards) → an `ImageGraph` that `src/onnx/image-graph.ts` writes as ONNX. Runtime-agnostic
 * (no `fs`): `scripts/import-keras.ts` reads the files, the tests can convert in workerd.
 *
 * Scope: feed-forward image classifiers with one 4-D input (`channels_last`) and one softmax
 * output — what Keras MobileNet-style models use. Layers:
 *   InputLayer; Conv2D, DepthwiseConv2D (`valid`/`same`, strides, dilations, bias, activation);
 *   BatchNormalization (folded into the conv/dense before it when that is its only consumer,
 *   otherwise a per-channel multiply-add); ReLU (`max_value` → Clip, `negative_slope` → LeakyRelu),
 *   Activation, Softmax; ZeroPadding2D (merged into the next conv's pads when it is the only
 *   consumer); Add; Concatenate (channel axis); AveragePooling2D, MaxPooling2D,
 *   GlobalAveragePooling2D; Dense (on 2-D values); Flatten;
 *   Reshape (only reshapes that do not move data: `[C]` ↔ `[1, 1, C]`); Dropout (identity).
 * Any other layer is refused, all unknown layers named in one error, before any conversion work.
 * Each layer class has its handler in `LAYER_HANDLERS` (src/keras/layers.ts); this file parses the
 * topology and weights, runs the handlers in order and checks the result.
 *
 * Layouts: Keras is NHWC with kernels `[kh, kw, in, out]` (depthwise `[kh, kw, in, multiplier]`),
 * dense `[in, units]`; the graph is NCHW with ONNX kernels `[out, in / group, kh, kw]` and Gemm
 * weights `[units, in]`. A 4-D value is flattened in Keras's H, W, C order (a transpose to NHWC
 * first unless it is 1 × 1).
 */

import { halfToFloat } from "../float16";
import type { GraphOp, ImageGraph } from "../onnx/image-graph";
import {
  type Conversion,
  type KerasLayer,
  LAYER_HANDLERS,
  layerHandler,
  type Shape,
  type SupportedLayer,
} from "./layers";

/** One weight's entry in a TF.js weights manifest. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
  /** TF.js weight quantization: stored as uint8/uint16 `q` meaning `q · scale + min`, or float16. */
  quantization?: { dtype: "uint8" | "uint16" | "float16"; min?: number; scale?: number };
}

/** The parsed `model.json` of a TF.js layers model (the fields used here). */
export interface LayersModelJson {
  /** `layers-model`, or `graph-model` for a frozen TensorFlow graph (refused: see `graphModelProblem`). */
  format?: string;
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
}

/** A weight decoded to float32 values. */
export interface Weight {
  shape: number[];
  values: Float32Array;
}

/**
 * Decodes the concatenated weight shards (`data`, in manifest order) into float32 values per weight
 * name, as TF.js does: uint8/uint16 quantized weights become `q · scale + min` (in float32).
 */
export function decodeWeights(specs: readonly WeightSpec[], data: Uint8Array): Map<string, Weight> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Map<string, Weight>();
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const q = spec.quantization;
    const bytesPer = q ? (q.dtype === "uint8" ? 1 : 2) : 4;
    if (offset + size * bytesPer > data.byteLength) {
      throw new Error(
        `weight '${spec.name}' runs past the end of the weight data (${data.byteLength} bytes)`,
      );
    }
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const at = offset + i * bytesPer;
      if (!q) {
        values[i] = spec.dtype === "int32" ? view.getInt32(at, true) : view.getFloat32(at, true);
      } else if (q.dtype === "float16") {
        values[i] = halfToFloat(view.getUint16(at, true));
      } else {
        const raw = q.dtype === "uint8" ? view.getUint8(at) : view.getUint16(at, true);
        values[i] = raw * (q.scale ?? 1) + (q.min ?? 0);
      }
    }
    out.set(spec.name, { shape: spec.shape, values });
    offset += size * bytesPer;
  }
  if (offset !== data.byteLength) {
    throw new Error(`the weights manifest describes ${offset} bytes but the shards hold ${data.byteLength}`);
  }
  return out;
}

/** Layer classes this importer converts (the keys of `LAYER_HANDLERS`, src/keras/layers.ts). */
export const SUPPORTED_LAYERS = Object.keys(LAYER_HANDLERS) as readonly SupportedLayer[];

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return v as Record<string, unknown>;
}

/**
 * Why `model` is a TF.js *graph* model (a frozen TensorFlow graph: `format: "graph-model"`, a
 * topology of `node`s instead of Keras layers), or undefined for a layers model. This importer reads
 * Keras layers; a graph model's ops are TensorFlow ops, which it does not convert.
 */
export function graphModelProblem(model: LayersModelJson): string | undefined {
  const topology = model.modelTopology as { node?: unknown } | null;
  const isGraph =
    model.format === "graph-model" ||
    (typeof topology === "object" && topology !== null && Array.isArray(topology.node));
  if (!isGraph) return undefined;
  const nodes = Array.isArray(topology?.node) ? ` of ${topology.node.length} TensorFlow ops` : "";
  return (
    `this is a TF.js graph model (format "graph-model": a frozen TensorFlow graph${nodes}), not a ` +
    'Keras layers model; the importer converts TF.js layers models (format "layers-model", a ' +
    "Keras topology). Convert the original Keras/SavedModel with `tensorflowjs_converter " +
    "--output_format tfjs_layers_model`, or to ONNX with tf2onnx and upload that as an `image` or " +
    "`tensor` model (docs/byom.md)"
  );
}

/** The layers of a Keras `Model`/`Functional` or `Sequential` topology, each with its input layers. */
function parseTopology(topology: unknown): { layers: KerasLayer[]; inputs: string[]; outputs: string[] } {
  const top = record(topology, "modelTopology");
  const modelConfig = record(top.model_config ?? top, "model_config");
  const className = modelConfig.class_name;
  const config = record(modelConfig.config, "model_config.config");
  const rawLayers = (Array.isArray(config) ? config : config.layers) as unknown;
  if (!Array.isArray(rawLayers)) throw new Error("the topology has no layers");
  if (className === "Sequential") {
    const layers: KerasLayer[] = [];
    let prev: string | undefined;
    rawLayers.forEach((raw, i) => {
      const l = record(raw, `layer ${i}`);
      const cfg = record(l.config ?? {}, `layer ${i} config`);
      const name = String(cfg.name ?? `layer_${i}`);
      if (prev === undefined && l.class_name !== "InputLayer") {
        // A Sequential model declares its input on the first layer.
        const shape = cfg.batch_input_shape;
        if (!Array.isArray(shape))
          throw new Error("a Sequential model needs batch_input_shape on its first layer");
        layers.push({
          name: "input",
          class_name: "InputLayer",
          config: { batch_input_shape: shape },
          inbound: [],
        });
        prev = "input";
      }
      layers.push({ name, class_name: String(l.class_name), config: cfg, inbound: prev ? [prev] : [] });
      prev = name;
    });
    const first = layers[0]?.name;
    if (!first || !prev) throw new Error("the model has no layers");
    return { layers, inputs: [first], outputs: [prev] };
  }
  if (className !== "Model" && className !== "Functional") {
    throw new Error(`unsupported model class '${String(className)}' (Model, Functional or Sequential)`);
  }
  const layers = rawLayers.map((raw, i): KerasLayer => {
    const l = record(raw, `layer ${i}`);
    const nodes = (l.inbound_nodes ?? []) as unknown;
    if (!Array.isArray(nodes) || nodes.length > 1) {
      throw new Error(`layer '${String(l.name)}' is called more than once (shared layers are not supported)`);
    }
    const inbound = ((nodes[0] ?? []) as unknown[]).map((ref) => {
      if (!Array.isArray(ref) || typeof ref[0] !== "string" || ref[1] !== 0 || ref[2] !== 0) {
        throw new Error(`layer '${String(l.name)}': unsupported inbound node format`);
      }
      return ref[0];
    });
    return {
      name: String(l.name),
      class_name: String(l.class_name),
      config: record(l.config, "config"),
      inbound,
    };
  });
  const names = (key: string): string[] =>
    ((config[key] ?? []) as unknown[]).map((ref) => (Array.isArray(ref) ? String(ref[0]) : String(ref)));
  return { layers, inputs: names("input_layers"), outputs: names("output_layers") };
}

/**
 * Folds each 2-D `affine` (a BatchNormalization that could not be folded into what precedes it)
 * whose only reader is a Dense (`gemm`) into that Dense: `W (s ⊙ x + t) + b = (W diag s) x + (W t + b)`.
 */
function foldAffineIntoGemm(ops: GraphOp[]): void {
  for (let i = ops.length - 1; i >= 0; i--) {
    const affine = ops[i];
    if (affine?.op !== "affine" || !affine.flat) continue;
    const readers = ops.filter((o) =>
      "inputs" in o ? o.inputs.includes(affine.output) : "input" in o && o.input === affine.output,
    );
    const gemm = readers[0];
    if (readers.length !== 1 || gemm?.op !== "gemm") continue;
    const inputs = affine.scale.length;
    for (let u = 0; u < gemm.units; u++) {
      let shifted = gemm.bias[u] as number;
      for (let j = 0; j < inputs; j++) {
        const at = u * inputs + j;
        shifted += (gemm.weights[at] as number) * (affine.shift[j] as number);
        gemm.weights[at] = (gemm.weights[at] as number) * (affine.scale[j] as number);
      }
      gemm.bias[u] = shifted;
    }
    gemm.input = affine.input;
    ops.splice(i, 1);
  }
}

/** What `kerasToImageGraph` returns: the graph and a summary of the converted layers. */
export interface ConvertedModel {
  graph: ImageGraph;
  /** Layer counts by Keras class. */
  layerCounts: Record<string, number>;
  /** Parameters after folding (float values written to ONNX). */
  parameters: number;
}

/**
 * Converts a TF.js layers model (parsed `model.json` + its concatenated weight shards) into an
 * `ImageGraph` with input layout `layout` (NHWC keeps Keras's own input; the graph transposes).
 * Throws an `Error` naming the problem: unknown layers (all of them), unsupported configurations,
 * missing weights, a non-softmax output.
 */
export function kerasToImageGraph(
  model: LayersModelJson,
  weightData: Uint8Array,
  options: { labels: string[]; layout?: "NHWC" | "NCHW" },
): ConvertedModel {
  const graphModel = graphModelProblem(model);
  if (graphModel) throw new Error(graphModel);
  const { layers, inputs, outputs } = parseTopology(model.modelTopology);
  const unknown = layers.filter((l) => !(SUPPORTED_LAYERS as readonly string[]).includes(l.class_name));
  if (unknown.length > 0) {
    throw new Error(
      `unsupported Keras layers: ${unknown.map((l) => `${l.class_name} ('${l.name}')`).join(", ")}; ` +
        `supported: ${SUPPORTED_LAYERS.join(", ")}`,
    );
  }
  if (inputs.length !== 1 || outputs.length !== 1) {
    throw new Error(
      `the model must have one input and one output (has ${inputs.length} and ${outputs.length})`,
    );
  }
  const weights = decodeWeights(
    model.weightsManifest.flatMap((g) => g.weights),
    weightData,
  );
  const used = new Set<string>();
  const weight = (layer: KerasLayer, name: string, size: number): Float32Array => {
    const key = `${layer.name}/${name}`;
    const w = weights.get(key);
    if (!w) throw new Error(`layer '${layer.name}' (${layer.class_name}): weight '${key}' is missing`);
    if (w.values.length !== size) {
      throw new Error(`weight '${key}' has ${w.values.length} values, expected ${size} (shape ${w.shape})`);
    }
    used.add(key);
    return w.values;
  };

  const consumers = new Map<string, number>();
  for (const l of layers) for (const i of l.inbound) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const byName = new Map(layers.map((l) => [l.name, l]));

  const ops: GraphOp[] = [];
  const shapes = new Map<string, Shape>();
  /** Layer name → the graph value holding its output (identity layers alias their input). */
  const values = new Map<string, string>();
  /** ZeroPadding2D outputs not materialised yet: a conv reading them takes the pads itself. */
  const pendingPads = new Map<string, { source: string; pads: [number, number, number, number] }>();
  /** The op that wrote a value (to fold a following BatchNormalization into it). */
  const producers = new Map<string, GraphOp>();
  const layerCounts: Record<string, number> = {};

  const inputName = inputs[0] as string;
  const inputLayer = byName.get(inputName);
  const batchShape = inputLayer?.config.batch_input_shape;
  if (!Array.isArray(batchShape) || batchShape.length !== 4 || !batchShape.slice(1).every(Number.isInteger)) {
    throw new Error("the input must be a fixed-size image batch [null, height, width, channels]");
  }
  const [, height, width, channels] = batchShape as [unknown, number, number, number];

  const push = (op: GraphOp): void => {
    ops.push(op);
    producers.set(op.output, op);
  };
  const inputValue = (layer: KerasLayer, i = 0): string => {
    const from = layer.inbound[i];
    if (from === undefined) throw new Error(`layer '${layer.name}' has no input ${i}`);
    const pending = pendingPads.get(from);
    if (pending) {
      // A non-conv consumer: materialise the padding once.
      pendingPads.delete(from);
      push({ op: "pad", input: pending.source, output: from, pads: pending.pads });
    }
    const v = values.get(from);
    if (v === undefined) throw new Error(`layer '${layer.name}' reads '${from}' before it is computed`);
    return v;
  };
  const shapeOf = (layer: KerasLayer, i = 0): Shape => {
    const s = shapes.get(layer.inbound[i] ?? "");
    if (!s) throw new Error(`layer '${layer.name}': unknown input shape`);
    return s;
  };
  const spatial = (layer: KerasLayer, s: Shape): [number, number, number] => {
    if (s.length !== 3) throw new Error(`layer '${layer.name}' (${layer.class_name}) needs a 4-D input`);
    return s;
  };
  const activation = (layer: KerasLayer, x: string, name: string | undefined): string => {
    const act = name ?? "linear";
    if (act === "linear") return x;
    const y = `${layer.name}_${act}`;
    if (act === "relu" || act === "sigmoid" || act === "tanh" || act === "softmax") {
      push({ op: act, input: x, output: y });
    } else if (act === "relu6") {
      push({ op: "clip", input: x, output: y, min: 0, max: 6 });
    } else {
      throw new Error(`layer '${layer.name}': unsupported activation '${act}'`);
    }
    return y;
  };

  const conversion: Conversion = {
    inputName,
    height,
    width,
    channels,
    consumers,
    values,
    shapes,
    pendingPads,
    producers,
    push,
    inputValue,
    shapeOf,
    spatial,
    activation,
    weight,
  };
  for (const layer of layers) {
    layerCounts[layer.class_name] = (layerCounts[layer.class_name] ?? 0) + 1;
    const format = layer.config.data_format;
    if (format !== undefined && format !== "channels_last") {
      throw new Error(`layer '${layer.name}': only channels_last data is supported`);
    }
    const handler = layerHandler(layer.class_name);
    if (!handler) throw new Error(`unsupported Keras layer ${layer.class_name} ('${layer.name}')`);
    handler(layer, conversion);
  }

  const outputName = outputs[0] as string;
  const finalValue = values.get(outputName);
  const finalShape = shapes.get(outputName);
  const last = ops.at(-1);
  if (last?.op !== "softmax" || last.output !== finalValue) {
    throw new Error(
      `the output layer '${outputName}' must end in a softmax (the graph contract is probabilities)`,
    );
  }
  if (finalShape?.length !== 1 || finalShape[0] !== options.labels.length) {
    throw new Error(
      `the model outputs ${finalShape?.join("×")} values but ${options.labels.length} labels were given`,
    );
  }
  foldAffineIntoGemm(ops);
  const unused = [...weights.keys()].filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`weights not used by any layer: ${unused.slice(0, 5).join(", ")}`);
  let parameters = 0;
  for (const op of ops)
    if (op.op === "conv" || op.op === "gemm") parameters += op.weights.length + op.bias.length;
  return {
    graph: {
      layout: options.layout ?? "NHWC",
      channels,
      height,
      width,
      labels: options.labels,
      ops,
      input: "input_nchw",
    },
    layerCounts,
    parameters,
  };
}

/** The Worker's upload limit on model bytes (`MAX_MODEL_BYTES` in wrangler.toml). */
export const DEFAULT_MAX_MODEL_BYTES = 16 * 1024 * 1024;

function sizeText(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes.toLocaleString("en-US")} bytes)`;
}

/**
 * Why an exported model cannot be uploaded, or undefined when it fits: its size and the limit
 * (`MAX_MODEL_BYTES`), and for a float export the size of the int8 one (`int8Bytes`) when that
 * would fit.
 */
export function modelSizeProblem(
  bytes: number,
  quantization: "none" | "int8",
  limit = DEFAULT_MAX_MODEL_BYTES,
  int8Bytes?: number,
): string | undefined {
  if (bytes <= limit) return undefined;
  const base = `the converted model is ${sizeText(bytes)} as ${quantization === "int8" ? "int8" : "float32"}; the upload limit (MAX_MODEL_BYTES) is ${sizeText(limit)}`;
  if (quantization === "none") {
    if (int8Bytes !== undefined && int8Bytes <= limit)
      return `${base}. Quantized to int8 (--quantize int8) it is ${sizeText(int8Bytes)}, which fits`;
    return int8Bytes === undefined
      ? `${base}. Quantizing to int8 (--quantize int8) makes it about 4× smaller`
      : `${base}. Quantized to int8 (--quantize int8) it would be ${sizeText(int8Bytes)}, still over the limit: use a smaller model`;
  }
  return `${base}: use a smaller model, or raise MAX_MODEL_BYTES (and MAX_WASM_HEAP_BYTES, which the session must fit in) where the isolate's memory allows`;
}
