/**
 * Imported feed-forward image graphs (what `src/keras/` produces) as ONNX, with the image graph
 * contract of `cnn.ts` (input `image`, output `scores`), float or int8 weights.
 */
import {
  type ImageModelManifest,
  type ImagePreprocessSpec,
  imageManifestSchema,
} from "../contracts/manifest";
import {
  AT,
  commonManifestFields,
  DT,
  type ExportMetadata,
  float32Bytes,
  GRAPH_NAMES,
  int64Bytes,
  intAttr,
  intsAttr,
  type ManifestMetadata,
  modelProto,
  node,
  type onnx,
  pushInt8Weight,
  tensor,
  tensorValue,
} from "./proto";

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
